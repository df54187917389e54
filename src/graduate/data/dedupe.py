"""Duplicate detection over texts: exact (same normalised text) and near (MinHash LSH over
character shingles of the normalised text, with datasketch). Pure functions over lists: each
returns, for every dropped position, the position of the earlier item it duplicates."""

from __future__ import annotations

from typing import Callable, Sequence

from graduate.data.text import normalise


def exact_duplicates(hashes: Sequence[str]) -> dict[int, int]:
    """Position -> position of the first item with the same hash, for every later repeat."""
    first: dict[str, int] = {}
    out: dict[int, int] = {}
    for i, h in enumerate(hashes):
        if h in first:
            out[i] = first[h]
        else:
            first[h] = i
    return out


def shingles(text: str, size: int) -> set[bytes]:
    """The character ``size``-grams of the normalised text (the whole text when it is shorter)."""
    t = normalise(text)
    if len(t) <= size:
        return {t.encode("utf-8")}
    return {t[i : i + size].encode("utf-8") for i in range(len(t) - size + 1)}


def near_duplicates(
    texts: Sequence[str],
    *,
    threshold: float = 0.8,
    shingle_chars: int = 5,
    num_perm: int = 128,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> dict[int, tuple[int, float]]:
    """Position -> (position of the earlier kept item, estimated Jaccard similarity) for every
    item whose shingle set is at least ``threshold`` similar to an earlier kept item's.

    Candidates come from MinHash LSH (datasketch); each is confirmed on the MinHash estimate, so
    an LSH false positive is never dropped."""
    from graduate.data.optional import require

    ds = require("datasketch")
    MinHash, MinHashLSH = ds.MinHash, ds.MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    kept: dict[int, MinHash] = {}
    out: dict[int, tuple[int, float]] = {}
    for i, text in enumerate(texts):
        m = MinHash(num_perm=num_perm, seed=seed)
        m.update_batch(list(shingles(text, shingle_chars)))
        best: tuple[int, float] | None = None
        for cand in lsh.query(m):
            sim = m.jaccard(kept[cand])
            if sim >= threshold and (best is None or cand < best[0]):
                best = (cand, sim)
        if best is not None:
            out[i] = best
        else:
            kept[i] = m
            lsh.insert(i, m)
        if progress is not None and (i % 500 == 0 or i == len(texts) - 1):
            progress(i + 1, len(texts))
    return out
