"""Label-issue detection: which teacher labels are probably wrong.

A student (tfidf-logreg by default, made by the ``make_model`` factory the caller passes: data sits
below students) is trained k times, each time without one fold, and predicts
that fold: out-of-fold probabilities that never saw the item's own label. cleanlab's confident
learning (``cleanlab.filter.find_label_issues``) compares them with the given labels and returns
the suspects, ranked by label quality (``cleanlab.rank.get_label_quality_scores``, self-confidence:
the probability the student gives the given label), lowest first.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from graduate.errors import StudentError

FoldProgress = Callable[[int, int], None]
# A fresh, untrained student (fit(texts, labels), predict_proba(texts)) per fold.
ModelFactory = Callable[[], Any]
# The newest out-of-fold probabilities: rebuilding the same set (review export after a build, the
# label-quality variants) reuses them instead of training k students again.
_OOF_CACHE: dict[str, tuple[np.ndarray, int]] = {}


@dataclass
class LabelIssues:
    ranked: list[int]  # positions of suspected label errors, most suspect first
    quality: np.ndarray  # label quality score per position (0: surely wrong, 1: surely right)
    pred_probs: np.ndarray  # out-of-fold probabilities, (n, labels)
    folds: int


def out_of_fold_probs(
    texts: Sequence[str],
    labels: Sequence[str],
    label_names: list[str],
    *,
    make_model: ModelFactory,
    kind: str = "tfidf-logreg",
    folds: int = 5,
    seed: int = 0,
    progress: FoldProgress | None = None,
) -> tuple[np.ndarray, int]:
    """(n, labels) probabilities, each row from a student that did not train on that item; and
    the number of folds used (fewer than asked when a class is smaller than ``folds``)."""
    from sklearn.model_selection import StratifiedKFold

    y = np.array(list(labels))
    smallest = min(np.unique(y, return_counts=True)[1]) if len(y) else 0
    k = min(folds, int(smallest))
    if k < 2:
        raise StudentError(f"label-issue detection needs at least 2 items of every label; the smallest label has {smallest}", kind=kind)
    out = np.zeros((len(y), len(label_names)))
    texts = list(texts)
    split = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for f, (train, held) in enumerate(split.split(np.zeros(len(y)), y)):
        student = make_model()
        student.fit([texts[i] for i in train], list(y[train]))
        out[held] = student.predict_proba([texts[i] for i in held])
        if progress is not None:
            progress(f + 1, k)
    return out, k


def find_label_issues(labels: Sequence[str], pred_probs: np.ndarray, label_names: list[str], *, filter_by: str = "prune_by_noise_rate") -> tuple[list[int], np.ndarray]:
    """Positions cleanlab finds to be probably mislabelled, most suspect first, and every item's label quality."""
    from graduate.data.optional import require

    cl_find = require("cleanlab.filter").find_label_issues
    get_label_quality_scores = require("cleanlab.rank").get_label_quality_scores

    index = {lab: i for i, lab in enumerate(label_names)}
    y = np.array([index[lab] for lab in labels])
    # cleanlab needs every class among the columns; classes absent from the given labels are
    # dropped from the probabilities (renormalised) so its per-class statistics are defined.
    present = sorted(set(y.tolist()))
    remap = {c: i for i, c in enumerate(present)}
    probs = pred_probs[:, present]
    probs = probs / np.clip(probs.sum(axis=1, keepdims=True), 1e-12, None)
    yy = np.array([remap[c] for c in y])
    ranked = cl_find(yy, probs, filter_by=filter_by, return_indices_ranked_by="self_confidence")
    quality = get_label_quality_scores(yy, probs, method="self_confidence")
    return [int(i) for i in ranked], np.asarray(quality)


def detect_label_issues(
    texts: Sequence[str],
    labels: Sequence[str],
    label_names: list[str],
    *,
    make_model: ModelFactory,
    kind: str = "tfidf-logreg",
    params: dict[str, Any] | None = None,
    folds: int = 5,
    filter_by: str = "prune_by_noise_rate",
    seed: int = 0,
    progress: FoldProgress | None = None,
) -> LabelIssues:
    """Suspected label errors of (texts, labels). ``make_model`` builds each fold's student;
    ``kind`` and ``params`` name it (messages, and the cache of the newest probabilities)."""
    key = hashlib.sha256(json.dumps([list(texts), list(labels), label_names, kind, params or {}, folds, seed], sort_keys=True).encode()).hexdigest()
    if key in _OOF_CACHE:  # the same items, labels and student: the same probabilities (pure function)
        probs, k = _OOF_CACHE[key]
    else:
        probs, k = out_of_fold_probs(texts, labels, label_names, make_model=make_model, kind=kind, folds=folds, seed=seed, progress=progress)
        _OOF_CACHE.clear()
        _OOF_CACHE[key] = (probs, k)
    ranked, quality = find_label_issues(labels, probs, label_names, filter_by=filter_by)
    return LabelIssues(ranked, quality, probs, k)
