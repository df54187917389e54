"""Classification metrics over predictions (scikit-learn's, not re-implemented)."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def classification_metrics(
    gold: Sequence[str],
    pred: Sequence[str],
    *,
    labels: list[str],
    positive: str,
    scores: np.ndarray | None = None,
) -> dict[str, float | int | None]:
    """Accuracy, precision/recall/F1, ROC-AUC, FPR/TPR.

    Binary tasks report the ``positive`` label's precision/recall/F1 and FPR/TPR; multi-class
    tasks report macro averages. ``scores`` is an (n, len(labels)) probability array; without it,
    ROC-AUC is computed from the hard predictions.
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support, roc_auc_score

    n = len(gold)
    out: dict[str, float | int | None] = {"n": n}
    if n == 0:
        return out
    out["accuracy"] = float(accuracy_score(gold, pred))
    binary = len(labels) == 2
    if binary:
        p, r, f, _ = precision_recall_fscore_support(gold, pred, labels=[positive], average=None, zero_division=0)
        out.update(precision=float(p[0]), recall=float(r[0]), f1=float(f[0]))
        negative = next(lab for lab in labels if lab != positive)
        tn, fp, fn, tp = confusion_matrix(gold, pred, labels=[negative, positive]).ravel()
        out["tpr"] = float(tp / (tp + fn)) if tp + fn else None
        out["fpr"] = float(fp / (fp + tn)) if fp + tn else None
        y = np.array([g == positive for g in gold], dtype=int)
        s = scores[:, labels.index(positive)] if scores is not None else np.array([q == positive for q in pred], dtype=float)
        out["roc_auc"] = float(roc_auc_score(y, s)) if 0 < y.sum() < n else None
    else:
        p, r, f, _ = precision_recall_fscore_support(gold, pred, labels=labels, average="macro", zero_division=0)
        out.update(precision=float(p), recall=float(r), f1=float(f))
        if scores is not None and len(set(gold)) == len(labels):
            out["roc_auc"] = float(roc_auc_score(gold, scores, labels=labels, multi_class="ovr"))
        else:
            out["roc_auc"] = None
    return out


def agreement(a: Sequence[str], b: Sequence[str]) -> dict[str, float | int | None]:
    """Share of items where two predictors agree, and Cohen's kappa."""
    from sklearn.metrics import cohen_kappa_score

    if not a:
        return {"n": 0, "agreement": None, "kappa": None}
    share = float(np.mean([x == y for x, y in zip(a, b)]))
    kappa = float(cohen_kappa_score(a, b)) if len(set(a) | set(b)) > 1 else None
    if kappa is not None and math.isnan(kappa):
        kappa = None
    return {"n": len(a), "agreement": share, "kappa": kappa}
