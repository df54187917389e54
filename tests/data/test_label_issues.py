"""cleanlab on out-of-fold tfidf-logreg probabilities finds labels flipped on purpose."""

import random

from graduate.data.label_issues import detect_label_issues
from graduate.students.registry import make_student

GOOD = "thanks for the helpful edit, the article looks great now, welcome and good work on the references".split()
BAD = "you stupid idiot, shut up you moron, this is garbage and you are a pathetic loser".split()


def _data(n: int = 400, flip: int = 30, seed: int = 0):
    rng = random.Random(seed)
    texts, truth = [], []
    for i in range(n):
        lab = "bad" if i % 3 == 0 else "ok"
        words = BAD if lab == "bad" else GOOD
        texts.append(" ".join(rng.choice(words) for _ in range(12)) + f" {rng.randint(0, 10**6)}")
        truth.append(lab)
    flipped = set(rng.sample(range(n), flip))
    given = [("ok" if t == "bad" else "bad") if i in flipped else t for i, t in enumerate(truth)]
    return texts, given, flipped


def test_flipped_labels_are_found_and_ranked_first():
    texts, given, flipped = _data()
    found = detect_label_issues(
        texts, given, ["ok", "bad"], make_model=lambda: make_student("tfidf-logreg", ["ok", "bad"], {"max_iter": 300}), params={"max_iter": 300}, folds=5, seed=0
    )
    suspects = set(found.ranked)
    assert len(suspects & flipped) >= 0.8 * len(flipped)  # recall of the injected flips
    assert len(suspects - flipped) <= 0.1 * len(suspects)  # few false alarms
    # ranked most suspect first: the suspects' quality scores ascend
    assert [found.quality[i] for i in found.ranked] == sorted(found.quality[i] for i in found.ranked)
    assert found.pred_probs.shape == (400, 2) and found.folds == 5
    assert all(found.quality[i] < 0.5 for i in flipped)


# -- multi-label: cleanlab's multi-label variant, per label -------------------------------------
TOPICS = {
    "sport": "match goal team score league coach stadium referee".split(),
    "money": "price bank loan budget market invest salary tax".split(),
    "food": "recipe bake dinner spicy soup flavour garlic oven".split(),
}
ML_LABELS = list(TOPICS)


def _sets(n: int = 450, flip: int = 25, seed: int = 1):
    from graduate.formats import labelset

    rng = random.Random(seed)
    texts, given, truth = [], [], []
    for i in range(n):
        chosen = [lab for j, lab in enumerate(ML_LABELS) if (i >> j) & 1] if i % 8 else []  # every combination, some empty
        words = [w for lab in chosen for w in TOPICS[lab]] or "the a of and it is was this that".split()
        texts.append(" ".join(rng.choice(words) for _ in range(14)) + f" {rng.randint(0, 10**6)}")
        truth.append(set(chosen))
    flipped = {i: rng.choice(ML_LABELS) for i in rng.sample(range(n), flip)}
    for i, t in enumerate(truth):
        s = set(t)
        if i in flipped:
            s ^= {flipped[i]}  # one label added or removed
        given.append(labelset.encode(s, ML_LABELS))
    return texts, given, flipped, truth


def test_multi_label_flips_are_found_and_the_flipped_label_is_named():
    texts, given, flipped, truth = _sets()
    found = detect_label_issues(
        texts, given, ML_LABELS, make_model=lambda: make_student("tfidf-logreg", ML_LABELS, {"multi_label": True, "max_iter": 300}),
        params={"multi_label": True}, folds=5, seed=0, multi_label=True,
    )
    suspects = set(found.ranked)
    assert len(suspects & set(flipped)) >= 0.8 * len(flipped)
    assert len(suspects - set(flipped)) <= 0.25 * len(suspects)
    assert found.pred_probs.shape == (450, 3) and found.suspect_labels is not None
    # the label at fault is named with its direction: +label given but absent, -label missing
    named = 0
    for i, lab in flipped.items():
        if i in found.suspect_labels:
            sign = "-" if lab in truth[i] else "+"
            named += f"{sign}{lab}" in found.suspect_labels[i]
    assert named >= 0.8 * len(suspects & set(flipped))
    assert [found.quality[i] for i in found.ranked] == sorted(found.quality[i] for i in found.ranked)


def test_multi_label_folds_need_two_items_of_each_label():
    import pytest

    from graduate.errors import StudentError

    texts = [f"text {i}" for i in range(20)]
    given = ["sport"] * 19 + ["money"]
    with pytest.raises(StudentError, match="at least 2 items of every label; the smallest label has 1"):
        detect_label_issues(texts, given, ML_LABELS, make_model=lambda: make_student("tfidf-logreg", ML_LABELS, {"multi_label": True}), folds=5, multi_label=True)


def test_without_cleanlab_it_says_so_before_training_any_fold(monkeypatch):
    # The 5-fold training ran first (5 minutes on MFRC) and only then named the missing extra.
    import sys

    import pytest

    from graduate.errors import NotReadyError

    texts, given, _ = _data(n=60, flip=0)
    made = []
    monkeypatch.setitem(sys.modules, "cleanlab", None)  # what an install without graduate[clean] imports
    with pytest.raises(NotReadyError, match=r"cleanlab is not installed; run `pip install 'graduate\[clean\]'`"):
        detect_label_issues(texts, given, ["ok", "bad"], make_model=lambda: made.append(1) or make_student("tfidf-logreg", ["ok", "bad"]), params={"seed": 7}, folds=5)
    assert made == []
