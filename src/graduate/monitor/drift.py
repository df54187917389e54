"""Drift between the training set (reference) and production traffic (current): pure functions
over texts, labels and vectors.

- text length: the population stability index over the reference's deciles, and the two-sample
  Kolmogorov-Smirnov test (``scipy.stats.ks_2samp``);
- predicted labels vs training labels: PSI over the label shares (multi-label: per label, PSI of the
  share of items carrying it vs not; the worst label's PSI is the figure a threshold judges);
- embeddings: how well a classifier tells current from reference texts (cross-validated ROC AUC
  of a logistic regression, 0.5 = indistinguishable), and the cosine distance between centroids.

PSI is the symmetrised Kullback-Leibler divergence, sum((a - e) * ln(a / e)), computed with
``scipy.special.rel_entr``; empty bins get a small floor so that it stays finite. Conventional
reading: < 0.1 stable, 0.1-0.2 moderate shift, > 0.2 significant shift.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

PSI_FLOOR = 1e-4


def psi_from_shares(expected: Sequence[float], actual: Sequence[float]) -> float:
    from scipy.special import rel_entr

    e = np.clip(np.asarray(expected, dtype=float), PSI_FLOOR, None)
    a = np.clip(np.asarray(actual, dtype=float), PSI_FLOOR, None)
    e, a = e / e.sum(), a / a.sum()
    return float(np.sum(rel_entr(a, e)) + np.sum(rel_entr(e, a)))


def length_drift(reference: Sequence[str], current: Sequence[str], bins: int = 10) -> dict[str, Any]:
    """PSI and KS on text length (characters), with the histograms a report plots."""
    from scipy.stats import ks_2samp

    ref = np.array([len(t) for t in reference], dtype=float)
    cur = np.array([len(t) for t in current], dtype=float)
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)))
    # Open-ended outer bins: lengths outside the reference's range still count.
    cuts = edges[1:-1]
    ref_share = np.bincount(np.searchsorted(cuts, ref, side="right"), minlength=len(cuts) + 1) / len(ref)
    cur_share = np.bincount(np.searchsorted(cuts, cur, side="right"), minlength=len(cuts) + 1) / len(cur)
    ks = ks_2samp(ref, cur)
    return {
        "psi": psi_from_shares(ref_share, cur_share),
        "ks_statistic": float(ks.statistic),
        "ks_pvalue": float(ks.pvalue),
        "bin_edges": [float(x) for x in edges],
        "reference_share": [float(x) for x in ref_share],
        "current_share": [float(x) for x in cur_share],
        "reference_median": float(np.median(ref)),
        "current_median": float(np.median(cur)),
        "reference_n": int(len(ref)),
        "current_n": int(len(cur)),
    }


def label_shift(reference: Sequence[str], current: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Shares of each label in the training set and in the traffic's predicted labels, and their PSI."""
    ref = {lab: 0 for lab in labels}
    cur = {lab: 0 for lab in labels}
    for x in reference:
        if x in ref:
            ref[x] += 1
    for x in current:
        if x in cur:
            cur[x] += 1
    nr, nc = max(sum(ref.values()), 1), max(sum(cur.values()), 1)
    ref_share = {k: v / nr for k, v in ref.items()}
    cur_share = {k: v / nc for k, v in cur.items()}
    return {
        "training": ref_share,
        "traffic": cur_share,
        "psi": psi_from_shares([ref_share[k] for k in labels], [cur_share[k] for k in labels]),
        "training_n": sum(ref.values()),
        "traffic_n": sum(cur.values()),
    }


def label_set_shift(reference: Sequence[str], current: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Multi-label (label sets as canonical strings): each label's share of items in the training
    set and in the traffic's predictions, the PSI of each label's carries/does-not split, and
    ``psi``: the largest (``worst_label`` names it). Unreadable sets are not counted."""
    from graduate.formats import labelset

    order = list(labels)

    def shares(values: Sequence[str]) -> tuple[dict[str, float], int]:
        sets = []
        for v in values:
            try:
                got = labelset.decode(v, order)
            except ValueError:
                continue
            if got is not None:
                sets.append(got)
        n = max(len(sets), 1)
        return {lab: sum(lab in s for s in sets) / n for lab in order}, len(sets)

    ref, nr = shares(reference)
    cur, nc = shares(current)
    per = {lab: psi_from_shares([ref[lab], 1 - ref[lab]], [cur[lab], 1 - cur[lab]]) for lab in order}
    worst = max(per, key=lambda lab: per[lab]) if per else None
    return {
        "training": ref,
        "traffic": cur,
        "per_label_psi": per,
        "psi": per[worst] if worst is not None else None,
        "worst_label": worst,
        "training_n": nr,
        "traffic_n": nc,
    }


def embedding_drift(reference: np.ndarray, current: np.ndarray, *, seed: int = 0, folds: int = 5) -> dict[str, Any]:
    """Domain-classifier ROC AUC (cross-validated) and centroid cosine distance."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    x = np.vstack([reference, current])
    y = np.r_[np.zeros(len(reference)), np.ones(len(current))]
    k = int(min(folds, len(reference), len(current)))
    auc = None
    if k >= 2:
        clf = LogisticRegression(C=1.0, max_iter=1000, class_weight="balanced", random_state=seed)
        scores = cross_val_predict(clf, x, y, cv=StratifiedKFold(k, shuffle=True, random_state=seed), method="predict_proba")[:, 1]
        auc = float(roc_auc_score(y, scores))
    a, b = reference.mean(axis=0), current.mean(axis=0)
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    cosine = 1.0 - float(a @ b) / denom if denom > 0 else 0.0
    return {"domain_auc": auc, "centroid_cosine_distance": cosine, "reference_n": int(len(reference)), "current_n": int(len(current))}
