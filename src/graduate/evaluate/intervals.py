"""Bootstrap confidence intervals on the headline metrics (``scipy.stats.bootstrap``, percentile).

Each resample is scored with scikit-learn's own metric, vectorised over resamples so a thousand
resamples cost about as much as one pass:

- accuracy: the mean of the per-item "label is right" indicator (``accuracy_score`` is that mean);
- F1: ``f1_score(average=None)`` on a multilabel-indicator matrix whose columns are the resamples
  (one column per resample and label; macro F1 is the mean over a resample's label columns), the
  items resampled within each gold label (stratified, as for ROC-AUC): a resample that happened to
  draw no item of a rare label would score it 0/0, i.e. 0, and drag a perfect student's interval
  down to [0, 1] (binary, 3 positives in 60) or [0.67, 1] (macro, 2 items of 100 in one label);
- ROC-AUC (binary): stratified resampling of the positive and negative items' scores (pROC's
  default), each resample's AUC from ``scipy.stats.mannwhitneyu`` (AUC = U / (n_pos x n_neg)).
"""

from __future__ import annotations

import warnings
from typing import Callable, Sequence

import numpy as np


def _rows(stat: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """Adapt ``stat(*2d arrays) -> 1d`` (one row per resample) to scipy's ``statistic(*a, axis)``."""

    def statistic(*arrays: np.ndarray, axis: int = -1) -> np.ndarray:
        arrays = tuple(np.moveaxis(np.asarray(a), axis, -1) for a in arrays)
        shape = arrays[0].shape[:-1]
        flat = [a.reshape(-1, a.shape[-1]) for a in arrays]
        return np.asarray(stat(*flat), dtype=float).reshape(shape)

    return statistic


def _f1_rows(n_labels: int, binary: bool) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    from sklearn.metrics import f1_score

    def stat(gold: np.ndarray, pred: np.ndarray) -> np.ndarray:
        # gold, pred: (resamples, n) label indices. Columns of the indicator matrices are
        # (resample, label) pairs; each column's binary F1 is that label's F1 in that resample.
        k, n = gold.shape
        cols = [n_labels - 1] if binary else list(range(n_labels))  # binary: the positive label is last
        y = np.stack([gold == c for c in cols], axis=-1).reshape(k, n, len(cols))
        p = np.stack([pred == c for c in cols], axis=-1).reshape(k, n, len(cols))
        y2 = np.transpose(y, (1, 0, 2)).reshape(n, k * len(cols)).astype(np.int8)
        p2 = np.transpose(p, (1, 0, 2)).reshape(n, k * len(cols)).astype(np.int8)
        if y2.shape[1] == 1:
            f = np.array([f1_score(y2[:, 0], p2[:, 0], zero_division=0)])
        else:
            f = f1_score(y2, p2, average=None, zero_division=0)
        return np.asarray(f).reshape(k, len(cols)).mean(axis=1)

    return stat


def _by_gold(g: np.ndarray, p: np.ndarray, stat: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> tuple[tuple[np.ndarray, ...], Callable[..., np.ndarray]]:
    """The predictions split by gold label, one sample each for an unpaired (stratified) bootstrap,
    and the statistic over them: ``stat(gold, pred)`` on each resample's items put back together.
    A label with one item is the same in every resample (scipy resamples only two or more)."""
    strata = [c for c in np.unique(g) if (g == c).sum() > 1]
    fixed = ~np.isin(g, strata)
    gold_row = np.concatenate([g[g == c] for c in strata] + [g[fixed]])

    def statistic(*preds: np.ndarray) -> np.ndarray:
        pred = np.concatenate([*preds, np.broadcast_to(p[fixed], (len(preds[0]), int(fixed.sum())))], axis=1)
        return stat(np.broadcast_to(gold_row, pred.shape), pred)

    return tuple(p[g == c] for c in strata), _rows(statistic)


def _auc_stat(pos: np.ndarray, neg: np.ndarray, axis: int = -1) -> np.ndarray:
    from scipy.stats import mannwhitneyu

    u = mannwhitneyu(pos, neg, axis=axis, alternative="two-sided", method="asymptotic").statistic
    return u / (pos.shape[axis] * neg.shape[axis])


def bootstrap_intervals(
    gold: Sequence[str],
    pred: Sequence[str],
    scores: np.ndarray | None,
    *,
    labels: list[str],
    positive: str,
    resamples: int,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, list[float] | None]:
    """``{"accuracy": [low, high], "f1": [...], "roc_auc": [...]}``; None where undefined.

    ``f1`` is the positive label's F1 for binary tasks and macro F1 otherwise, as in
    ``classification_metrics``; ``roc_auc`` uses ``scores`` (n, len(labels)) or, without them,
    the hard predictions, and is given for binary tasks only.
    """
    from scipy.stats import bootstrap

    n = len(gold)
    out: dict[str, list[float] | None] = {"accuracy": None, "f1": None, "roc_auc": None}
    if resamples <= 0 or n < 2:
        return out
    binary = len(labels) == 2
    order = [lab for lab in labels if lab != positive] + [positive] if binary else list(labels)
    index = {lab: i for i, lab in enumerate(order)}
    g = np.array([index[x] for x in gold])
    p = np.array([index[x] for x in pred])

    def run(data: tuple[np.ndarray, ...], statistic: Callable[..., np.ndarray], paired: bool, salt: int) -> list[float] | None:
        with warnings.catch_warnings():
            # a resample of a constant statistic (e.g. a perfect predictor) is a valid answer: [x, x]
            warnings.simplefilter("ignore", RuntimeWarning)
            res = bootstrap(
                data,
                statistic,
                paired=paired,
                vectorized=True,
                n_resamples=resamples,
                confidence_level=level,
                method="percentile",
                batch=200,
                rng=np.random.default_rng(seed + salt),
            )
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
        return None if np.isnan(lo) or np.isnan(hi) else [lo, hi]

    correct = (g == p).astype(float)
    out["accuracy"] = run((correct,), lambda x, axis=-1: np.mean(x, axis=axis), False, 0)
    f1 = _f1_rows(len(order), binary)
    strata, f1_stat = _by_gold(g, p, f1)
    if strata:
        out["f1"] = run(strata, f1_stat, False, 1)
    else:  # every gold label has one item: every resample is the test set itself
        out["f1"] = [float(f1(g[None], p[None])[0])] * 2
    if binary:
        if scores is not None:
            s = np.asarray(scores)[:, labels.index(positive)]
        else:
            s = (p == index[positive]).astype(float)
        is_pos = g == index[positive]
        if 1 < is_pos.sum() < n - 1:
            out["roc_auc"] = run((s[is_pos], s[~is_pos]), _auc_stat, False, 2)
    return out


def interval_text(ci: list[float] | None, digits: int = 3) -> str:
    return "–" if ci is None else f"[{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"

