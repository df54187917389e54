"""Drift between the training set (reference) and production traffic (current): pure functions
over texts, labels and vectors.

- text length: the population stability index over the reference's deciles, and the two-sample
  Kolmogorov-Smirnov test (``scipy.stats.ks_2samp``);
- embeddings: how well a classifier tells current from reference texts (cross-validated ROC AUC
  of a logistic regression, 0.5 = indistinguishable), and the cosine distance between centroids.

PSI and the label shares live in graduate.data.shift (promotion judges a candidate with them too).
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np

from graduate.data.shift import psi_from_shares


def length_drift(reference: Sequence[str], current: Sequence[str], bins: int = 10) -> dict[str, Any]:
    """PSI and KS on text length (characters), with the histograms a report plots."""
    from scipy.stats import ks_2samp

    ref = np.array([len(t) for t in reference], dtype=float)
    cur = np.array([len(t) for t in current], dtype=float)
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)))
    # Open-ended outer bins: lengths outside the reference's range still count.
    cuts = edges[1:-1]
    if not len(cuts):
        # At most two distinct lengths among the deciles (every text as long, or nearly): one bin
        # would make any traffic look the same. Cut below, at each length and above instead
        # (lengths are whole numbers: the last cut, max + 1, leaves "exactly max" a bin of its own).
        cuts = np.r_[edges, edges[-1] + 1]
        edges = np.r_[edges[0], cuts, cuts[-1]]
    ref_share = np.bincount(np.searchsorted(cuts, ref, side="right"), minlength=len(cuts) + 1) / len(ref)
    cur_share = np.bincount(np.searchsorted(cuts, cur, side="right"), minlength=len(cuts) + 1) / len(cur)
    with warnings.catch_warnings():
        # scipy falls back to the asymptotic p-value on ties and says so on stderr; the figure is fine
        warnings.filterwarnings("ignore", "ks_2samp: Exact calculation unsuccessful", RuntimeWarning)
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
