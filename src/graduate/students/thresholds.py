"""Multi-label decisions: each label's threshold tuned for F1 on held-out items, and the label set a
row of per-label probabilities stands for. Shared by every student that predicts label sets."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from graduate.errors import StudentError
from graduate.formats import labelset


def indicators(values: Sequence[str], labels: list[str], kind: str) -> np.ndarray:
    """(items, labels) 0/1 from label sets' canonical strings; a bad one is a StudentError."""
    try:
        return np.array([[int(lab in labelset.decode(v, labels)) for lab in labels] for v in values], dtype=int).reshape(len(values), len(labels))  # type: ignore[operator]
    except (ValueError, TypeError) as exc:
        raise StudentError(f"training labels must be label sets of {labels}: {exc}", kind=kind) from None


def f1(y: np.ndarray, pred: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, np.asarray(pred).astype(int), zero_division=0))


def best_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The threshold with the best validation F1 for one label (ties: the one nearest 0.5); 0.5
    when the held-out items have no positive to tune on, or the scores rank nothing (a constant
    score would otherwise "win" by calling every item positive)."""
    if not y.any() or np.ptp(p) == 0:
        return 0.5
    candidates = np.unique(np.concatenate([p, [0.5]]))
    scored = [(f1(y, p >= c), -abs(c - 0.5), float(c)) for c in candidates]
    return max(scored)[2]


def tune(y: np.ndarray, probs: np.ndarray) -> list[float]:
    return [best_threshold(y[:, j], probs[:, j]) for j in range(y.shape[1])]


def decide_sets(probs: np.ndarray, labels: list[str], thresholds: Sequence[float], at_least_one: bool) -> list[str]:
    """Each row's label set (its labels at or above their thresholds; the one furthest above its
    threshold when none passes and ``at_least_one``), as canonical strings."""
    t = np.asarray(thresholds, dtype=float)
    out = []
    for row in np.asarray(probs):
        chosen = [lab for lab, p, th in zip(labels, row, t) if p >= th]
        if not chosen and at_least_one and len(row):
            chosen = [labels[int(np.argmax(row - t))]]
        out.append(labelset.encode(chosen, labels))
    return out


def split(n: int, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) positions: a seeded random ``share`` held out (at least one item)."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(share * n)))
    return np.sort(order[n_val:]), np.sort(order[:n_val])
