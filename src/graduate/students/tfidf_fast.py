"""A faster, exact ``transform`` for fitted scikit-learn TF-IDF pipelines, for serving.

scikit-learn's ``CountVectorizer`` spends most of a prediction in Python: it builds every
character n-gram as a string, then looks each one up under a ``try/except KeyError``. Two facts
make that avoidable without changing a single output value:

- ``char_wb`` n-grams never cross a word boundary, so a word's vocabulary indices are the same in
  every document: they are computed once per distinct word and cached (LRU, bounded).
- for ``word`` analyzers, the analyzer's tokens are kept as they are, and only the counting loop is
  replaced by a lookup without exceptions.

The counts then go through the vectorizer's own fitted ``TfidfTransformer`` (idf, sublinear tf,
norm) and the pipeline's own classifier. Anything this module does not recognise falls back to
scikit-learn's path. ``tests/students/test_tfidf_fast.py`` checks equality with scikit-learn.
"""

from __future__ import annotations

import array
import weakref
from functools import lru_cache
from typing import Any, Callable, Sequence

import numpy as np

# Distinct words whose n-gram indices are kept; ~0.5 KB each, so at most ~50 MB.
WORD_CACHE_SIZE = 100_000


class FastVectorizer:
    """``transform`` of one fitted ``TfidfVectorizer`` (or ``CountVectorizer``), same result, faster."""

    def __init__(self, vectorizer: Any, cache_size: int = WORD_CACHE_SIZE):
        self.v = vectorizer
        self.vocab: dict[str, int] = vectorizer.vocabulary_
        self.n_features = len(self.vocab)
        self._counts: Callable[[Sequence[str]], Any] | None = None
        if getattr(vectorizer, "input", "content") != "content" or callable(vectorizer.analyzer):
            return
        if vectorizer.analyzer == "char_wb":
            self._preprocess = vectorizer.build_preprocessor()
            self._word_indices = lru_cache(maxsize=cache_size)(self._char_wb_word)
            self._counts = self._char_wb_counts
        elif vectorizer.analyzer == "word":
            self._analyze = vectorizer.build_analyzer()
            self._counts = self._word_counts

    @property
    def accelerated(self) -> bool:
        return self._counts is not None

    def _char_wb_word(self, word: str) -> array.array:
        vocab = self.vocab
        # A single word (no whitespace) gives exactly the n-grams sklearn yields for it in context.
        return array.array("q", [vocab[g] for g in self.v._char_wb_ngrams(word) if g in vocab])

    def _char_wb_counts(self, docs: Sequence[str]) -> tuple[array.array, list[int]]:
        indices = array.array("q")
        indptr = [0]
        decode, preprocess, white = self.v.decode, self._preprocess, self.v._white_spaces
        word_indices = self._word_indices
        for doc in docs:
            for word in white.sub(" ", preprocess(decode(doc))).split():
                indices.extend(word_indices(word))
            indptr.append(len(indices))
        return indices, indptr

    def _word_counts(self, docs: Sequence[str]) -> tuple[array.array, list[int]]:
        indices = array.array("q")
        indptr = [0]
        get = self.vocab.get
        analyze = self._analyze
        for doc in docs:
            found = [get(f) for f in analyze(doc)]
            indices.extend([i for i in found if i is not None])
            indptr.append(len(indices))
        return indices, indptr

    def transform(self, docs: Sequence[str]) -> Any:
        import scipy.sparse as sp

        if self._counts is None:
            return self.v.transform(docs)
        indices, indptr = self._counts(docs)
        idx = np.frombuffer(indices, dtype=np.int64) if len(indices) else np.zeros(0, dtype=np.int64)
        X = sp.csr_matrix(
            (np.ones(len(idx), dtype=self.v.dtype), idx, np.asarray(indptr, dtype=np.int64)),
            shape=(len(docs), self.n_features),
        )
        # Sorted indices with summed repeats, as sklearn makes them. For a batch, two linear
        # transpositions sort each row (a counting sort) faster than sort_indices' per-row
        # comparison sort; for a few rows the transposition's per-column arrays cost more.
        if len(docs) > 8:
            X = X.tocsc().tocsr()
        X.sum_duplicates()
        if self.v.binary:
            X.data.fill(1)
        tfidf = getattr(self.v, "_tfidf", None)
        if tfidf is None:
            return X
        return _weigh(tfidf, X)


def _weigh(tfidf: Any, X: Any) -> Any:
    """``TfidfTransformer.transform`` without its per-call input checks (X is built above, from the
    fitted vocabulary), using the same operations in the same order and sklearn's own row
    normalisation, so the numbers are identical."""
    from sklearn.utils.sparsefuncs_fast import inplace_csr_row_normalize_l1, inplace_csr_row_normalize_l2

    if tfidf.norm not in (None, "l1", "l2"):
        return tfidf.transform(X, copy=False)
    if tfidf.sublinear_tf:
        np.log(X.data, X.data)
        X.data += 1.0
    if hasattr(tfidf, "idf_"):
        X.data *= tfidf.idf_[X.indices]
    if tfidf.norm == "l2":
        inplace_csr_row_normalize_l2(X)
    elif tfidf.norm == "l1":
        inplace_csr_row_normalize_l1(X)
    return X


def _binary_logreg(clf: Any) -> bool:
    from sklearn.linear_model import LogisticRegression

    return type(clf) is LogisticRegression and len(clf.classes_) == 2 and clf.coef_.shape[0] == 1


class FastPipeline:
    """``Pipeline([("features", FeatureUnion([...vectorizers])), ("clf", classifier)])`` sped up."""

    def __init__(self, pipeline: Any):
        self.pipeline = pipeline
        self.parts: list[tuple[FastVectorizer, float]] | None = None
        steps = getattr(pipeline, "steps", None)
        if not steps or len(steps) != 2:
            return
        union = steps[0][1]
        transformers = getattr(union, "transformer_list", None)
        if transformers is None or not hasattr(union, "transformer_weights"):
            return
        weights = union.transformer_weights or {}
        parts = []
        for name, t in transformers:
            if t in ("drop", "passthrough") or not hasattr(t, "vocabulary_"):
                return
            parts.append((FastVectorizer(t), float(weights.get(name, 1.0))))
        self.parts = parts
        self.clf = steps[1][1]
        self.binary = _binary_logreg(self.clf)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        import scipy.sparse as sp

        from sklearn import config_context

        if self.parts is None:
            return self.pipeline.predict_proba(list(texts))
        # The matrices are built here from the fitted vocabulary: finite and well-formed, so
        # sklearn's per-call input validation (a large share of a one-text prediction) is skipped.
        with config_context(assume_finite=True, skip_parameter_validation=True):
            blocks = [fast.transform(texts) * w if w != 1.0 else fast.transform(texts) for fast, w in self.parts]
            X = sp.hstack(blocks, format="csr")
            if not self.binary:
                return self.clf.predict_proba(X)
        # LogisticRegression's binary predict_proba (decision_function, then expit), as sklearn
        # computes it, minus the input checks that dominate a one-text prediction.
        from scipy.special import expit

        prob = np.asarray(X @ self.clf.coef_.T).reshape(-1) + self.clf.intercept_
        expit(prob, out=prob)
        return np.stack([1 - prob, prob], axis=1)


_FAST: "weakref.WeakKeyDictionary[Any, FastPipeline]" = weakref.WeakKeyDictionary()


def fast_pipeline(pipeline: Any) -> FastPipeline:
    """The (cached) fast view of a fitted pipeline; refitting creates a new pipeline object."""
    fast = _FAST.get(pipeline)
    if fast is None:
        fast = _FAST[pipeline] = FastPipeline(pipeline)
    return fast
