"""Diversity: where the unlabelled pool lies that the training set does not cover.

Pool and training texts are embedded together (MiniLM through ``graduate.models.embed``, the
project's one embedding helper; TF-IDF + SVD without it) and clustered with k-means. A cluster
whose share of the training set is below ``min_coverage`` times its share of the pool is a region
the training set under-represents; its pool items nearest the centre show what it holds.
"""

from __future__ import annotations

import random
from typing import Any, Sequence

import numpy as np


def coverage_report(
    pool: Sequence[tuple[int, str]],
    train: Sequence[tuple[int, str]],
    *,
    clusters: int = 20,
    sample: int = 3000,
    embedding: str = "auto",
    min_coverage: float = 0.5,
    seed: int = 0,
    examples_per_cluster: int = 3,
) -> dict[str, Any]:
    """``pool`` and ``train`` are (example id, text). Returns the method, per-cluster counts and
    shares, the clusters not covered, and for each the pool ids nearest its centre."""
    from sklearn.cluster import KMeans

    from graduate.models.embed import embed_pair

    rng = random.Random(seed)
    pool_s = list(pool) if len(pool) <= sample else rng.sample(list(pool), sample)
    train_s = list(train) if len(train) <= sample else rng.sample(list(train), sample)
    if not pool_s or not train_s:
        return {"method": None, "pool_items": len(pool), "train_items": len(train), "k": 0, "clusters": [], "uncovered": [], "uncovered_pool_share": 0.0}
    ref, cur, method = embed_pair([t for _, t in train_s], [t for _, t in pool_s], method=embedding, seed=seed)
    x = np.vstack([ref, cur])
    k = max(2, min(clusters, len(x) // 5))
    km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(x)
    lab_train, lab_pool = km.labels_[: len(ref)], km.labels_[len(ref) :]
    dist_pool = np.linalg.norm(cur - km.cluster_centers_[lab_pool], axis=1)
    out = []
    for c in range(k):
        n_pool, n_train = int((lab_pool == c).sum()), int((lab_train == c).sum())
        pool_share, train_share = n_pool / len(pool_s), n_train / len(train_s)
        members = np.where(lab_pool == c)[0]
        nearest = members[np.argsort(dist_pool[members])][:examples_per_cluster]
        ratio = train_share / pool_share if pool_share else None
        out.append(
            {
                "cluster": c,
                "pool": n_pool,
                "train": n_train,
                "pool_share": pool_share,
                "train_share": train_share,
                "coverage": ratio,
                "covered": ratio is None or ratio >= min_coverage,
                "examples": [pool_s[i][0] for i in nearest],
                "example_texts": [pool_s[i][1][:200] for i in nearest],
                "pool_ids": [pool_s[i][0] for i in members],
            }
        )
    out.sort(key=lambda r: (r["coverage"] is None, r["coverage"] if r["coverage"] is not None else 0))
    uncovered = [r["cluster"] for r in out if not r["covered"]]
    return {
        "method": method,
        "pool_items": len(pool),
        "train_items": len(train),
        "sampled": {"pool": len(pool_s), "train": len(train_s)},
        "k": k,
        "min_coverage": min_coverage,
        "clusters": out,
        "uncovered": uncovered,
        "uncovered_pool_share": sum(r["pool_share"] for r in out if not r["covered"]),
    }
