"""TF-IDF over word and character n-grams, then logistic regression (scikit-learn)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from graduate.errors import StudentError
from graduate.students import thresholds
from graduate.students.blas import fit_threads
from graduate.students.base import StudentBase, check_fit_input, params_with_defaults
from graduate.students.params import TfidfLogregParams

# What masked_terms become: one word no text is likely to hold, so the n-grams of every masked term are the same.
MASK = "maskedterm"


def term_masker(terms: Sequence[str]) -> Any:
    """A function replacing every whole-word, any-case occurrence of ``terms`` (longest first) by
    MASK, matched as the slices and the counterfactual swaps match them (``graduate.spec.terms``)."""
    from graduate.spec.terms import mask_terms, term_pattern

    if not terms:
        return lambda text: text
    pattern = term_pattern(terms)
    return lambda text: mask_terms(text, pattern, MASK)


class PerLabelLogistic(ClassifierMixin, BaseEstimator):
    """Multi-label head: one logistic regression per label over the shared TF-IDF features; a label
    that is constant in training keeps its rate. Probabilities come from one stacked matrix product."""

    def __init__(self, C: float = 1.0, class_weight: Any = None, max_iter: int = 100, random_state: int | None = None):
        self.C, self.class_weight, self.max_iter, self.random_state = C, class_weight, max_iter, random_state

    def fit(self, X: Any, Y: np.ndarray, sample_weight: Any = None) -> "PerLabelLogistic":
        from sklearn.linear_model import LogisticRegression

        Y = np.asarray(Y)
        coef, intercept, constant = [], [], []
        for j in range(Y.shape[1]):
            col = Y[:, j]
            if col.min() == col.max():
                coef.append(np.zeros(X.shape[1]))
                intercept.append(0.0)
                constant.append(float(col[0]))
                continue
            m = LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=self.max_iter, random_state=self.random_state).fit(X, col, sample_weight=sample_weight)
            coef.append(m.coef_[0])
            intercept.append(float(m.intercept_[0]))
            constant.append(np.nan)
        self.coef_, self.intercept_, self.constant_ = np.vstack(coef), np.asarray(intercept), np.asarray(constant)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        from scipy.special import expit

        out = expit(np.asarray(X @ self.coef_.T) + self.intercept_)
        fixed = ~np.isnan(self.constant_)
        out[:, fixed] = self.constant_[fixed]
        return out


class TfidfLogregStudent(StudentBase):
    kind = "tfidf-logreg"
    takes_multi_label = True  # params multi_label: one logistic regression per label, shared features
    Params = TfidfLogregParams  # every param: type, default, meaning (graduate students show)
    DEFAULTS: dict[str, Any] = TfidfLogregParams().model_dump()

    def __init__(self, labels: list[str], **params: Any):
        self.labels = list(labels)
        self.params = params_with_defaults(self.kind, params, self.DEFAULTS, self.Params)
        self.pipeline: Any = None
        self.multi_label = bool(self.params["multi_label"])
        self.thresholds: list[float] = [0.5] * len(self.labels)
        self.at_least_one = False
        self._mask = term_masker(self.params["masked_terms"])

    def _texts(self, texts: Sequence[str]) -> list[str]:
        return [self._mask(t) for t in texts] if self.params["masked_terms"] else list(texts)

    def _build(self) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import FeatureUnion, Pipeline

        p = self.params
        features = FeatureUnion(
            [
                (
                    "word",
                    TfidfVectorizer(
                        analyzer="word",
                        ngram_range=tuple(p["word_ngrams"]),
                        min_df=p["min_df"],
                        max_features=p["max_features"],
                        sublinear_tf=p["sublinear_tf"],
                        strip_accents="unicode",
                    ),
                ),
                (
                    "char",
                    TfidfVectorizer(
                        analyzer="char_wb",
                        ngram_range=tuple(p["char_ngrams"]),
                        min_df=p["min_df"],
                        max_features=p["max_features"],
                        sublinear_tf=p["sublinear_tf"],
                        lowercase=True,
                    ),
                ),
            ]
        )
        lr = {"C": p["C"], "class_weight": p["class_weight"], "max_iter": p["max_iter"], "random_state": p["seed"]}
        from graduate.students.label_heads import label_head

        clf = label_head(p["head"], **lr) if self.multi_label else LogisticRegression(**lr)
        return Pipeline([("features", features), ("clf", clf)])

    def fit(self, texts: Sequence[str], labels: Sequence[str], *, sample_weight: Sequence[float] | None = None) -> None:
        with fit_threads():  # one BLAS thread: lbfgs on many columns is faster so (see blas)
            if self.multi_label:
                self._fit_sets(self._texts(texts), labels, sample_weight)
                return
            check_fit_input(self.kind, texts, labels, self.labels)
            self.pipeline = self._build()
            kwargs = {"clf__sample_weight": np.asarray(sample_weight)} if sample_weight is not None else {}
            self.pipeline.fit(self._texts(texts), list(labels), **kwargs)

    def _fit_sets(self, texts: list[str], labels: Sequence[str], sample_weight: Sequence[float] | None) -> None:
        """Multi-label: tune each label's threshold on out-of-fold probabilities (threshold_folds;
        1: a held-out share), then train on all of it."""
        y = thresholds.training_sets(self.kind, texts, labels, self.labels)
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
        p = self.params

        def fit_predict(train: np.ndarray, held: np.ndarray) -> np.ndarray:
            model = self._build()
            model.fit([texts[i] for i in train], y[train], **({"clf__sample_weight": w[train]} if w is not None else {}))
            return model.predict_proba([texts[i] for i in held])

        val, val_probs = thresholds.held_out_probs(y, fit_predict, folds_=p["threshold_folds"], share=p["validation_share"], seed=p["seed"])
        self.thresholds, self.at_least_one, decisions = thresholds.fit_decisions(y, val, val_probs, self.labels, max_labels=p["max_labels"])
        decisions["folds"] = p["threshold_folds"]
        self.pipeline = self._build()
        self.pipeline.fit(texts, y, **({"clf__sample_weight": w} if w is not None else {}))
        self.report = {"multi_label": decisions}

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if self.pipeline is None:
            raise StudentError("not trained; call fit or load first", kind=self.kind)
        from graduate.students.tfidf_fast import fast_pipeline

        # Same numbers as self.pipeline.predict_proba, several times faster (see tfidf_fast).
        raw = fast_pipeline(self.pipeline).predict_proba(self._texts(texts))
        if self.multi_label:
            return np.asarray(raw, dtype=float)
        classes = list(self.pipeline.classes_)
        out = np.zeros((len(texts), len(self.labels)))
        for j, lab in enumerate(classes):
            out[:, self.labels.index(lab)] = raw[:, j]
        return out

    def save(self, directory: Path) -> None:
        import joblib

        directory.mkdir(parents=True, exist_ok=True)
        joblib.dump(self.pipeline, directory / "pipeline.joblib")
        meta: dict[str, Any] = {"labels": self.labels, "params": self.params}
        if self.multi_label:
            meta.update(thresholds=self.thresholds, at_least_one=self.at_least_one, report=self.report)
        (directory / "student.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, directory: Path) -> "TfidfLogregStudent":
        import joblib

        meta = json.loads((directory / "student.json").read_text())
        obj = cls(meta["labels"], **meta["params"])
        obj.pipeline = joblib.load(directory / "pipeline.joblib")
        if obj.multi_label:
            obj.thresholds, obj.at_least_one, obj.report = list(meta["thresholds"]), bool(meta["at_least_one"]), meta.get("report", {})
        return obj
