"""Multi-label decisions: thresholds tuned for micro-F1 on held-out items (one shared, then per
label where enough positives make it reliable), and the label set a row of per-label probabilities
stands for. Shared by every student that predicts label sets."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from graduate.errors import StudentError
from graduate.formats import labelset


def indicators(values: Sequence[str], labels: list[str], kind: str) -> np.ndarray:
    """(items, labels) 0/1 from label sets' canonical strings; a bad one is a StudentError."""
    try:
        return np.array([[int(lab in labelset.decode(v, labels)) for lab in labels] for v in values], dtype=int).reshape(len(values), len(labels))  # type: ignore[operator]
    except (ValueError, TypeError) as exc:
        raise StudentError(f"training labels must be label sets of {labels}: {exc}", kind=kind) from None


def training_sets(kind: str, texts: Sequence[str], labels: Sequence[str], order: list[str]) -> np.ndarray:
    """The indicator matrix of a multi-label training set, after the checks every such student makes."""
    if len(texts) != len(labels) or len(texts) < 10:
        raise StudentError(f"{len(texts)} texts and {len(labels)} label sets; a multi-label student needs at least 10 of each, equally many", kind=kind)
    return indicators(labels, order, kind)


def fit_decisions(
    y: np.ndarray, val: np.ndarray, val_probs: np.ndarray, labels: list[str], at_least_one: bool | str = "auto", max_labels: int | None = None
) -> tuple[list[float], bool, dict]:
    """(thresholds tuned on the held-out rows ``val``, at-least-one rule, the report every student
    keeps of it). ``at_least_one`` auto: when every training item has a label. ``max_labels``: the
    cap prediction applies, so the thresholds are tuned for the sets as served."""
    tuned = tune(y[val], val_probs, max_labels=max_labels)
    keep_one = bool(y.sum(axis=1).min() >= 1) if at_least_one == "auto" else bool(at_least_one)
    report = {
        "validation_items": int(len(val)),
        "thresholds": dict(zip(labels, tuned)),
        "validation_f1": {lab: f1(y[val, j], val_probs[:, j] >= t) for j, (lab, t) in enumerate(zip(labels, tuned))},
        "at_least_one": keep_one,
        # the decisions as served, on the rows that tuned them (optimistic; compares recipes alike)
        "validation_micro_f1": micro_f1(y[val], indicators(decide_sets(val_probs, labels, tuned, keep_one, max_labels), labels, "thresholds")),
    }
    return tuned, keep_one, report


def f1(y: np.ndarray, pred: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, np.asarray(pred).astype(int), zero_division=0))


# Per-label thresholds move off the shared one only for labels with this many held-out positives:
# fewer make a noisy threshold (chosen by 5-fold cross-validation on the MFRC pool against the
# teacher's labels: micro-F1 0.70 tuning each label for its own F1, 0.747 one shared threshold,
# 0.758 this; never on a test set).
MIN_POSITIVES = 40
GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)


def micro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, pred, average="micro", zero_division=0))


def tune(y: np.ndarray, probs: np.ndarray, *, min_positives: int = MIN_POSITIVES, max_labels: int | None = None) -> list[float]:
    """Thresholds for micro-F1 on held-out items: one shared threshold first (ties: nearest 0.5),
    then, for each label with at least ``min_positives`` held-out positives, its own threshold by
    coordinate ascent (two passes; ties: nearest the shared one). Each candidate is scored on the
    sets capped at ``max_labels`` as ``decide_sets`` serves them."""
    y = np.asarray(y, dtype=bool)
    probs = np.asarray(probs, dtype=float)
    shared = max(GRID, key=lambda c: (micro_f1(y, passing(probs, np.full(y.shape[1], c), max_labels)), -abs(c - 0.5)))
    t = np.full(y.shape[1], shared)
    for _ in range(2):
        for j in range(y.shape[1]):
            if y[:, j].sum() < min_positives:
                continue

            def score(c: float, j: int = j) -> float:
                tt = t.copy()
                tt[j] = c
                return micro_f1(y, passing(probs, tt, max_labels))

            t[j] = max(GRID, key=lambda c: (score(c), -abs(c - shared)))
    return [float(x) for x in t]


def passing(probs: np.ndarray, thresholds: np.ndarray, max_labels: int | None) -> np.ndarray:
    """(items, labels) bool: the labels at or above their thresholds, at most ``max_labels`` a row,
    those furthest above theirs (ties: the spec's order), as ``decide_sets`` keeps them."""
    margin = probs - thresholds
    chosen = margin >= 0
    if max_labels is None or max_labels >= probs.shape[1]:
        return chosen
    order = np.argsort(-margin, axis=1, kind="stable")  # a passing label's margin is never below a failing one's
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(probs.shape[1])[None, :].repeat(len(probs), axis=0), axis=1)
    return chosen & (rank < max_labels)


def decide_sets(probs: np.ndarray, labels: list[str], thresholds: Sequence[float], at_least_one: bool, max_labels: int | None = None) -> list[str]:
    """Each row's label set (its labels at or above their thresholds; the one furthest above its
    threshold when none passes and ``at_least_one``; at most ``max_labels``, those furthest above
    theirs, as the answer format refuses more), as canonical strings."""
    t = np.asarray(thresholds, dtype=float)
    out = []
    for row in np.asarray(probs):
        chosen = [j for j, (p, th) in enumerate(zip(row, t)) if p >= th]
        if not chosen and at_least_one and len(row):
            chosen = [int(np.argmax(row - t))]
        if max_labels is not None and len(chosen) > max_labels:
            chosen = sorted(chosen, key=lambda j: -(row[j] - t[j]))[:max_labels]  # stable: the spec's order among equals
        out.append(labelset.encode([labels[j] for j in chosen], labels))
    return out


def folds(n: int, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, held-out) positions of ``k`` seeded shuffled folds (scikit-learn's KFold): thresholds
    tuned on out-of-fold probabilities of every training item, not on one held-out share."""
    from sklearn.model_selection import KFold

    if n < k:
        raise StudentError(f"{n} items cannot make {k} folds for the thresholds; lower threshold_folds")
    return [(np.asarray(a), np.asarray(b)) for a, b in KFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(n))]


def held_out_probs(
    y: np.ndarray, fit_predict: Callable[[np.ndarray, np.ndarray], np.ndarray], *, folds_: int, share: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(positions, probabilities) the thresholds are tuned on: out-of-fold for every item when
    ``folds_`` > 1, else one held-out ``share``. ``fit_predict(train, held)`` fits a fresh model on
    the train positions and returns its per-label probabilities for the held ones."""
    if folds_ > 1:
        probs = np.zeros(y.shape)
        for train, held in folds(len(y), folds_, seed):
            probs[held] = fit_predict(train, held)
        return np.arange(len(y)), probs
    train, val = split(len(y), share, seed)
    return val, fit_predict(train, val)


def split(n: int, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) positions: a seeded random ``share`` held out (at least one item)."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(share * n)))
    return np.sort(order[n_val:]), np.sort(order[:n_val])
