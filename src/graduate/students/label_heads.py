"""Multi-label heads over shared features, chosen by a linear student's ``head`` param.

``per_label`` (``PerLabelLogistic``): one logistic regression per label, each a yes/no question;
any number of labels per item. ``softmax`` (``SoftmaxLabels``): one multinomial logistic
regression over the labels plus "none", in which an item with k labels counts as k rows of weight
1/k (each label an equal share of it). The labels then compete for the item, which suits tasks
where most items carry one label (the MFRC comments: 94%); each label's probability is still
thresholded on its own, so an item can keep two labels when both are likely.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from graduate.errors import StudentError

HEADS = ("per_label", "softmax")


def label_head(head: str, **lr: Any) -> Any:
    """The estimator for ``head`` with logistic-regression settings ``lr`` (C, class_weight, ...)."""
    from graduate.students.tfidf_logreg import PerLabelLogistic

    if head == "per_label":
        return PerLabelLogistic(**lr)
    if head == "softmax":
        return SoftmaxLabels(**lr)
    raise StudentError(f"params.head is {head!r}; give one of {list(HEADS)}")


class SoftmaxLabels(ClassifierMixin, BaseEstimator):
    """One multinomial logistic regression over the labels and "none"; ``predict_proba`` gives
    each label's probability (the "none" column left out). A label no training item has gets 0."""

    def __init__(self, C: float = 1.0, class_weight: Any = None, max_iter: int = 100, random_state: int | None = None):
        self.C, self.class_weight, self.max_iter, self.random_state = C, class_weight, max_iter, random_state

    def fit(self, X: Any, Y: np.ndarray, sample_weight: Any = None) -> "SoftmaxLabels":
        from sklearn.linear_model import LogisticRegression

        if isinstance(self.class_weight, dict):
            raise StudentError("head softmax takes class_weight balanced or none, not per-label weights")
        Y = np.asarray(Y, dtype=int)
        n, k = Y.shape
        per_item = Y.sum(axis=1)
        items, cols = np.nonzero(Y)
        none = np.flatnonzero(per_item == 0)
        rows = np.concatenate([items, none])
        classes = np.concatenate([cols, np.full(len(none), k)])
        weights = np.concatenate([1.0 / per_item[items], np.ones(len(none))])
        if sample_weight is not None:
            weights = weights * np.asarray(sample_weight, dtype=float)[rows]
        self.n_labels_ = k
        present = np.unique(classes)
        if len(present) == 1:  # one class only: it is certain
            self.constant_, self.model_ = int(present[0]), None
            return self
        self.constant_ = None
        self.model_ = LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=self.max_iter, random_state=self.random_state)
        self.model_.fit(X[rows], classes, sample_weight=weights)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        out = np.zeros((X.shape[0], self.n_labels_ + 1))
        if self.model_ is None:
            out[:, self.constant_] = 1.0
        else:
            out[:, self.model_.classes_] = self.model_.predict_proba(X)
        return out[:, : self.n_labels_]
