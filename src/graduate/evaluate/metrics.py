"""Classification metrics over predictions (scikit-learn's, not re-implemented)."""

from __future__ import annotations

import math
from typing import Any, Sequence

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
        out["recall"] = out["tpr"]  # the same rate: without a positive item, not measured (not 0)
        out["fpr"] = float(fp / (fp + tn)) if fp + tn else None
        y = np.array([g == positive for g in gold], dtype=int)
        s = scores[:, labels.index(positive)] if scores is not None else np.array([q == positive for q in pred], dtype=float)
        out["roc_auc"] = float(roc_auc_score(y, s)) if 0 < y.sum() < n else None
    else:
        p, r, f, _ = precision_recall_fscore_support(gold, pred, labels=labels, average="macro", zero_division=0)
        out.update(precision=float(p), recall=float(r), f1=float(f))
        if scores is not None and len(set(gold)) == len(labels):
            from sklearn.preprocessing import label_binarize

            # One-vs-rest, macro; as an indicator matrix the labels may be in any order (the
            # `labels=` form of roc_auc_score insists on sorted ones).
            out["roc_auc"] = float(roc_auc_score(label_binarize(list(gold), classes=labels), scores, average="macro"))
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


def label_metrics(gold: Sequence[str], pred: Sequence[str], *, labels: list[str]) -> dict[str, Any]:
    """Precision, recall, F1 and support per label, and their macro (unweighted) means."""
    from sklearn.metrics import precision_recall_fscore_support

    if not gold:
        return {"per_label": {}, "macro_precision": None, "macro_recall": None, "macro_f1": None}
    p, r, f, s = precision_recall_fscore_support(gold, pred, labels=labels, average=None, zero_division=0)
    mp, mr, mf, _ = precision_recall_fscore_support(gold, pred, labels=labels, average="macro", zero_division=0)
    return {
        "per_label": {
            lab: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])} for i, lab in enumerate(labels)
        },
        "macro_precision": float(mp),
        "macro_recall": float(mr),
        "macro_f1": float(mf),
    }


def pr_auc(gold: Sequence[str], scores: np.ndarray | None, pred: Sequence[str], *, labels: list[str], positive: str) -> float | None:
    """Average precision (area under the precision-recall curve): of the positive label's
    probability for binary tasks, macro over labels (one-vs-rest) otherwise. Without scores, the
    hard predictions are the scores (as for the teacher)."""
    from sklearn.metrics import average_precision_score
    from sklearn.preprocessing import label_binarize

    if not gold:
        return None
    if scores is None:
        scores = label_binarize(list(pred), classes=labels).astype(float)
        if len(labels) == 2:
            scores = np.column_stack([1 - scores[:, 0], scores[:, 0]])
    if len(labels) == 2:
        y = np.array([g == positive for g in gold], dtype=int)
        if y.sum() == 0:
            return None
        return float(average_precision_score(y, scores[:, labels.index(positive)]))
    y = label_binarize(list(gold), classes=labels)
    present = y.sum(axis=0) > 0
    if not present.all():
        return None
    return float(average_precision_score(y, scores, average="macro"))


def confusion(gold: Sequence[str], pred: Sequence[str], *, labels: list[str]) -> list[list[int]]:
    """Confusion matrix, rows = gold label, columns = predicted label, both in ``labels`` order."""
    from sklearn.metrics import confusion_matrix

    if not gold:
        return [[0] * len(labels) for _ in labels]
    return confusion_matrix(gold, pred, labels=labels).tolist()
