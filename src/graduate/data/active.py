"""Active selection: which unlabelled items to send to the teacher next (pure functions over arrays).

Uncertainty alone picks near-copies of one confusing item; diversity alone picks what the student
already knows. ``select_items`` does both, as cluster-margin selection does: the most uncertain
items form a candidate set a few times the budget, the candidates are clustered (k-means on their
text vectors) into as many clusters as items to pick, and each cluster gives its most uncertain
item.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

# Candidates per item picked: enough room for diversity, few enough that all are uncertain.
CANDIDATES_PER_PICK = 5


def uncertainty(probs: np.ndarray, *, multi_label: bool = False, thresholds: Sequence[float] | None = None) -> np.ndarray:
    """Per item, 0 (sure) .. 1 (a coin toss). Single-label: one minus the margin between the two
    most probable labels. Multi-label: the mean over labels of how close each probability is to
    its decision threshold (0.5 when none is given), scaled to 0..1."""
    p = np.asarray(probs, dtype=float)
    if p.ndim != 2 or p.shape[0] == 0:
        return np.zeros(p.shape[0] if p.ndim else 0)
    if multi_label:
        t = np.full(p.shape[1], 0.5) if thresholds is None else np.asarray(thresholds, dtype=float)
        span = np.where(p >= t, 1 - t, t)  # distance from the threshold to the far end
        closeness = 1 - np.abs(p - t) / np.maximum(span, 1e-9)
        return closeness.mean(axis=1)
    if p.shape[1] == 1:
        return 1 - np.abs(2 * p[:, 0] - 1)
    top2 = np.sort(p, axis=1)[:, -2:]
    return 1 - (top2[:, 1] - top2[:, 0])


def text_vectors(texts: Sequence[str], *, dims: int = 64, seed: int = 0) -> np.ndarray:
    """Unit-length vectors of the texts (TF-IDF reduced with truncated SVD): what diversity is measured on."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    if not texts:
        return np.zeros((0, 1))
    texts = [t or " " for t in texts]
    words = TfidfVectorizer(min_df=1, max_features=50_000, sublinear_tf=True)
    analyse = words.build_analyzer()
    if not any(analyse(t) for t in texts):
        # No text holds a word ("👍", "!!!", "?"): characters tell them apart, where words would
        # give an empty vocabulary.
        words = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), min_df=1, max_features=50_000, sublinear_tf=True)
    tfidf = words.fit_transform(texts)
    if len(set(texts)) == 1:  # copies of one text: one point (SVD of no variance divides by zero)
        return np.ones((len(texts), 1))
    k = max(1, min(dims, tfidf.shape[1] - 1, len(texts) - 1))
    if k < 2:
        return normalize(tfidf.toarray()[:, :1] + 1e-9)
    return normalize(TruncatedSVD(n_components=k, random_state=seed).fit_transform(tfidf))


def select_items(scores: np.ndarray, vectors: np.ndarray, n: int, *, seed: int = 0) -> list[int]:
    """Indices of ``n`` items: uncertain (high ``scores``) and unlike each other (``vectors``)."""
    from sklearn.cluster import MiniBatchKMeans

    total = len(scores)
    if n <= 0 or total == 0:
        return []
    if n >= total:
        return list(np.argsort(-scores, kind="stable"))
    order = np.argsort(-scores, kind="stable")
    candidates = order[: min(total, CANDIDATES_PER_PICK * n)]
    if len(candidates) <= n:
        return [int(i) for i in candidates]
    km = MiniBatchKMeans(n_clusters=n, random_state=seed, n_init=3, batch_size=max(1024, 3 * n)).fit(vectors[candidates])
    picked: dict[int, int] = {}
    for i, cluster in zip(candidates, km.labels_):  # candidates run from most to least uncertain
        picked.setdefault(int(cluster), int(i))
    chosen = list(picked.values())
    if len(chosen) < n:  # empty clusters: fill with the most uncertain not yet chosen
        taken = set(chosen)
        chosen += [int(i) for i in candidates if int(i) not in taken][: n - len(chosen)]
    return sorted(chosen, key=lambda i: -scores[i])
