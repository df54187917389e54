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
