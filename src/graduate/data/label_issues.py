"""Label-issue detection: which teacher labels are probably wrong.

A student (tfidf-logreg by default, made by the ``make_model`` factory the caller passes: data sits
below students) is trained k times, each time without one fold, and predicts
that fold: out-of-fold probabilities that never saw the item's own label. cleanlab's confident
learning (``cleanlab.filter.find_label_issues``) compares them with the given labels and returns
the suspects, ranked by label quality (``cleanlab.rank.get_label_quality_scores``, self-confidence:
the probability the student gives the given label), lowest first.

Multi-label tasks (label sets as canonical strings, ``graduate.formats.labelset``) use cleanlab's
multi-label variant (``cleanlab.multilabel_classification``): the student's per-label probabilities
are judged label by label, an item is suspect when any of its decisions is, and
``suspect_labels`` names, per suspect item, the labels whose presence or absence looks wrong.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from graduate.data.balance import per_label_counts
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
    # multi-label: per suspect position, the labels whose presence (+label) or absence (-label) looks wrong
    suspect_labels: dict[int, list[str]] | None = None


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
    multi_label: bool = False,
) -> tuple[np.ndarray, int]:
    """(n, labels) probabilities, each row from a student that did not train on that item; and
    the number of folds used (fewer than asked when a class is smaller than ``folds``).
    Multi-label: folds are stratified by each item's rarest label (the empty set its own stratum),
    so every label is in every fold's training part."""
    from sklearn.model_selection import StratifiedKFold

    y = np.array(list(labels))
    if multi_label:
        strata = _rarest_label(list(labels), label_names)
        per_label = [c for c in per_label_counts(list(labels), label_names).values() if c > 0]
        smallest = min(per_label) if per_label else 0
    else:
        strata = y
        smallest = min(np.unique(strata, return_counts=True)[1]) if len(y) else 0
    k = min(folds, int(smallest))
    if k < 2:
        raise StudentError(f"label-issue detection needs at least 2 items of every label; the smallest label has {smallest}", kind=kind)
    if multi_label:  # a stratum smaller than the folds (a rare empty set, say) joins the largest one
        values, sizes = np.unique(strata, return_counts=True)
        largest = values[int(np.argmax(sizes))]
        small = {v for v, c in zip(values, sizes) if c < k}
        strata = np.array([largest if v in small else v for v in strata])
    out = np.zeros((len(y), len(label_names)))
    texts = list(texts)
    split = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for f, (train, held) in enumerate(split.split(np.zeros(len(y)), strata)):
        student = make_model()
        student.fit([texts[i] for i in train], list(y[train]))
        out[held] = student.predict_proba([texts[i] for i in held])
        if progress is not None:
            progress(f + 1, k)
    return out, k


def _rarest_label(label_sets: list[str], label_names: list[str]) -> np.ndarray:
    """Each item's stratum for multi-label folds: its least frequent label; -1 for the empty set."""
    from graduate.formats import labelset

    sets = [labelset.decode(v, label_names) or frozenset() for v in label_sets]
    counts = per_label_counts(label_sets, label_names)
    return np.array([label_names.index(min(s, key=lambda lab: (counts[lab], label_names.index(lab)))) if s else -1 for s in sets])


def find_multilabel_issues(
    label_sets: Sequence[str], pred_probs: np.ndarray, label_names: list[str], *, filter_by: str = "prune_by_noise_rate"
) -> tuple[list[int], np.ndarray, dict[int, list[str]]]:
    """cleanlab's multi-label issues: suspect positions (most suspect first), every item's label
    quality, and per suspect item the labels at fault (``+care``: given but probably absent;
    ``-care``: not given but probably present)."""
    from graduate.data.optional import require
    from graduate.formats import labelset

    ml_filter = require("cleanlab.multilabel_classification.filter")
    ml_quality = require("cleanlab.multilabel_classification").get_label_quality_scores
    given = [labelset.indicator(v, label_names) for v in label_sets]
    indices = [[j for j, on in enumerate(row) if on] for row in given]  # type: ignore[union-attr]
    probs = np.clip(np.asarray(pred_probs, dtype=float), 0.0, 1.0)
    flagged = ml_filter.find_label_issues(indices, probs, filter_by=filter_by, return_indices_ranked_by="self_confidence")
    ranked = [int(i) for i in flagged]
    quality = ml_quality(indices, probs)
    per_label = np.asarray(ml_filter.find_multilabel_issues_per_class(indices, probs, filter_by=filter_by))
    faults: dict[int, list[str]] = {}
    for i in ranked:
        row = given[i]
        faults[i] = [("+" if row[j] else "-") + lab for j, lab in enumerate(label_names) if per_label[i, j]] or [  # type: ignore[index]
            # cleanlab flagged the set as a whole: name the decision the student disagrees with most
            ("+" if row[j] else "-") + label_names[j] for j in [int(np.argmax(np.abs(np.asarray(row) - probs[i])))]  # type: ignore[index]
        ]
    return ranked, np.asarray(quality), faults


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
    multi_label: bool = False,
) -> LabelIssues:
    """Suspected label errors of (texts, labels). ``make_model`` builds each fold's student;
    ``kind`` and ``params`` name it (messages, and the cache of the newest probabilities).
    ``multi_label``: ``labels`` are label sets (canonical strings) and the student gives
    independent per-label probabilities."""
    from graduate.data.optional import require

    require("cleanlab")  # before the folds are trained, not after
    key = hashlib.sha256(json.dumps([list(texts), list(labels), label_names, kind, params or {}, folds, seed, multi_label], sort_keys=True).encode()).hexdigest()
    if key in _OOF_CACHE:  # the same items, labels and student: the same probabilities (pure function)
        probs, k = _OOF_CACHE[key]
    else:
        probs, k = out_of_fold_probs(
            texts, labels, label_names, make_model=make_model, kind=kind, folds=folds, seed=seed, progress=progress, multi_label=multi_label
        )
        _OOF_CACHE.clear()
        _OOF_CACHE[key] = (probs, k)
    if multi_label:
        ranked, quality, faults = find_multilabel_issues(labels, probs, label_names, filter_by=filter_by)
        return LabelIssues(ranked, quality, probs, k, faults)
    ranked, quality = find_label_issues(labels, probs, label_names, filter_by=filter_by)
    return LabelIssues(ranked, quality, probs, k)
