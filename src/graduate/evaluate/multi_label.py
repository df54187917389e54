"""Multi-label figures over 0/1 indicator matrices (items x labels), scikit-learn's metrics:
micro and macro precision/recall/F1, per-label precision/recall/F1/support, ROC-AUC and
calibration, exact-set match (subset accuracy), Hamming loss, label cardinality predicted vs gold,
and percentile bootstrap intervals (``scipy.stats.bootstrap``, items resampled; for micro-F1 those with and without a gold label apart) on micro-F1 and
exact match. Label sets arrive as canonical strings (``graduate.formats.labelset``) or matrices."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from graduate.evaluate.calibration import calibration


def indicator_matrix(sets: Sequence[frozenset[str]], labels: list[str]) -> np.ndarray:
    return np.array([[int(lab in s) for lab in labels] for s in sets], dtype=np.int8).reshape(len(sets), len(labels))


def multi_label_metrics(
    gold: np.ndarray,
    pred: np.ndarray,
    *,
    labels: list[str],
    scores: np.ndarray | None = None,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    bins: int = 10,
) -> dict[str, Any]:
    """Every multi-label figure of ``pred`` (and ``scores``, per-label probabilities) against ``gold``."""
    from sklearn.metrics import accuracy_score, hamming_loss, precision_recall_fscore_support, roc_auc_score

    gold, pred = np.asarray(gold, dtype=int), np.asarray(pred, dtype=int)
    n = gold.shape[0]
    out: dict[str, Any] = {"n": n, "ci": {}, "ci_level": level}
    if n == 0:  # no answered item: counts only, as a single-label predictor without answers
        return out
    for avg in ("micro", "macro"):
        p, r, f, _ = precision_recall_fscore_support(gold, pred, average=avg, zero_division=0)
        out[f"{avg}_precision"], out[f"{avg}_recall"], out[f"{avg}_f1"] = float(p), float(r), float(f)
    out["exact_match"] = float(accuracy_score(gold, pred))
    out["hamming_loss"] = float(hamming_loss(gold, pred))
    out["cardinality"] = {"gold": float(gold.sum(axis=1).mean()), "predicted": float(pred.sum(axis=1).mean())}
    p, r, f, support = precision_recall_fscore_support(gold, pred, average=None, zero_division=0, labels=list(range(len(labels))))
    per: dict[str, dict[str, Any]] = {}
    for j, lab in enumerate(labels):
        row: dict[str, Any] = {"precision": float(p[j]), "recall": float(r[j]), "f1": float(f[j]), "support": int(support[j]), "predicted": int(pred[:, j].sum())}
        both = 0 < gold[:, j].sum() < n
        if scores is not None:
            col = np.clip(np.asarray(scores, dtype=float)[:, j], 0.0, 1.0)
            row["roc_auc"] = float(roc_auc_score(gold[:, j], col)) if both else None
            cal = calibration(["yes" if g else "no" for g in gold[:, j]], np.stack([1 - col, col], axis=1), labels=["no", "yes"], positive="yes", bins=bins)
            row["ece"], row["brier"] = cal["ece"], cal["brier"]
        per[lab] = row
    out["per_label"] = per
    out["labels_never_in_gold"] = [lab for lab in labels if per[lab]["support"] == 0]
    out["ci"] = _intervals(gold, pred, resamples=resamples, level=level, seed=seed) if n > 1 and resamples > 0 else {}
    out["ci_level"] = level
    for name in ("micro_f1", "exact_match"):  # as accuracy_ci_low/high: what a gate names
        ci = out["ci"].get(name)
        out[f"{name}_ci_low"], out[f"{name}_ci_high"] = (ci[0], ci[1]) if ci else (None, None)
    return out


def _intervals(gold: np.ndarray, pred: np.ndarray, *, resamples: int, level: float, seed: int) -> dict[str, list[float] | None]:
    """Percentile bootstrap over items of micro-F1 and exact match (the mean of the per-item
"whole set right" indicator, as ``accuracy_score`` computes it), vectorised over resamples."""
    from scipy.stats import bootstrap

    def micro_f1(idx: np.ndarray, axis: int = -1) -> np.ndarray:
        # scikit-learn's F1 per column of an indicator matrix whose columns are the resamples, each
        # holding that resample's (item, label) decisions: a column's binary F1 is its micro-F1
        # (the same trick as graduate.evaluate.intervals for single-label F1).
        from sklearn.metrics import f1_score

        idx = np.atleast_2d(np.asarray(idx, dtype=int))
        g = gold[idx].reshape(len(idx), -1).T
        p = pred[idx].reshape(len(idx), -1).T
        if g.shape[1] == 1:
            return np.array([f1_score(g[:, 0], p[:, 0], zero_division=0)])
        return np.asarray(f1_score(g, p, average=None, zero_division=0), dtype=float)

    def exact(idx: np.ndarray, axis: int = -1) -> np.ndarray:
        idx = np.atleast_2d(np.asarray(idx, dtype=int))
        return (gold[idx] == pred[idx]).all(axis=2).mean(axis=1)

    # micro-F1: the items with a gold label and those without are resampled apart (stratified), so
    # every resample holds as many labelled items as the set: a resample that drew none of a
    # sparse set's few labelled items scored 0/0 = 0, and a perfect student's interval was [0, 1].
    has = gold.any(axis=1)
    groups = [np.flatnonzero(has), np.flatnonzero(~has)]
    fixed = np.concatenate([g for g in groups if len(g) == 1] + [np.zeros(0, dtype=int)])
    strata = tuple(g for g in groups if len(g) > 1)

    def micro_f1_strata(*idx: np.ndarray, axis: int = -1) -> np.ndarray:
        parts = [np.atleast_2d(np.asarray(i, dtype=int)) for i in idx]
        return micro_f1(np.concatenate([*parts, np.broadcast_to(fixed, (len(parts[0]), len(fixed)))], axis=1))

    out: dict[str, list[float] | None] = {}
    for name, stat, items in (("micro_f1", micro_f1_strata, strata), ("exact_match", exact, (np.arange(gold.shape[0]),))):
        if not items:  # one labelled item and one without: every resample is the set itself
            out[name] = [float(micro_f1(fixed[None])[0])] * 2
            continue
        res = bootstrap(items, stat, n_resamples=resamples, confidence_level=level, method="percentile", vectorized=True, random_state=seed)
        lo, hi = res.confidence_interval
        out[name] = None if np.isnan(lo) else [float(lo), float(hi)]
    return out
