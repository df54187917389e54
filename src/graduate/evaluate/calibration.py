"""Calibration: does a predicted probability of 0.8 come true 80% of the time?

Binary tasks look at the positive label's probability against "gold is positive"; multi-class
tasks at the top label's probability against "the top label is right". The reliability curve is
scikit-learn's ``calibration_curve`` (equal-width bins); the expected calibration error is the
mean gap between its two curves, weighted by how many items each bin holds.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def calibration(gold: Sequence[str], probs: np.ndarray, *, labels: list[str], positive: str, bins: int = 10) -> dict[str, Any]:
    """Reliability curve points, expected calibration error and (binary) Brier score."""
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import brier_score_loss

    n = len(gold)
    if n == 0:
        return {"ece": None, "brier": None, "curve": [], "target": None}
    if len(labels) == 2:
        y = np.array([g == positive for g in gold], dtype=int)
        p = probs[:, labels.index(positive)]
        target = f"P({positive})"
        brier = float(brier_score_loss(y, p, pos_label=1)) if 0 < y.sum() < n else None
    else:
        top = probs.argmax(axis=1)
        y = np.array([labels[t] == g for t, g in zip(top, gold)], dtype=int)
        p = probs.max(axis=1)
        target = "P(top label)"
        brier = None
    p = np.clip(p, 0.0, 1.0)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=bins, strategy="uniform")
    # calibration_curve returns only non-empty bins; count items per bin the way it assigns them
    # (sklearn.calibration: np.searchsorted over the inner bin edges) to weight each bin's gap.
    edges = np.linspace(0.0, 1.0, bins + 1)
    counts = np.bincount(np.searchsorted(edges[1:-1], p), minlength=bins)
    counts = counts[counts > 0]
    ece = float(np.sum(counts / n * np.abs(prob_true - prob_pred)))
    curve = [
        {"mean_predicted": float(mp), "fraction_positive": float(ft), "count": int(c)} for mp, ft, c in zip(prob_pred, prob_true, counts)
    ]
    return {"ece": ece, "brier": brier, "curve": curve, "target": target}
