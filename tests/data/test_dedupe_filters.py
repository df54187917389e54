"""Duplicates, rule filters, group cap and balance on synthetic data with known truth."""

import random

import pytest

from graduate.data.balance import class_counts, class_weights, prior_weights, undersample
from graduate.data.dedupe import exact_duplicates, near_duplicates
from graduate.data.filters import cap_groups, rule_filter
from graduate.data.text import text_hash
from graduate.spec import FilterSpec

WORDS = "the a cat dog house river talk page edit source article image please stop vandalism thanks welcome".split()


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) + str(rng.randint(0, 999)) for _ in range(25)) for _ in range(n)]


def test_injected_exact_and_near_duplicates_are_found():
    rng = random.Random(1)
    texts = _texts(300)
    exact_from = rng.sample(range(300), 15)
    near_from = rng.sample([i for i in range(300) if i not in exact_from], 15)
    injected_exact = {len(texts) + k: i for k, i in enumerate(exact_from)}
    texts += ["  " + texts[i].upper() + "\n" for i in exact_from]  # same after normalisation
    injected_near = {len(texts) + k: i for k, i in enumerate(near_from)}
    texts += [texts[i][:-6] + " extra" for i in near_from]  # a small edit at the end

    exact = exact_duplicates([text_hash(t) for t in texts])
    assert exact == injected_exact
    near = near_duplicates(texts, threshold=0.8)
    found = {i: j for i, (j, _) in near.items()}
    for dup, orig in {**injected_exact, **injected_near}.items():
        assert found.get(dup) == orig
    # nothing else: the random originals share no long runs of characters
    assert set(found) == set(injected_exact) | set(injected_near)
    assert all(0.8 <= sim <= 1.0 for _, sim in near.values())


def test_rule_filters_say_which_rule_dropped_each_item():
    texts = ["ok", "a normal comment", "x" * 50, "visit http://spam.example now", "fine"]
    out = rule_filter(texts, FilterSpec(min_chars=3, max_chars=40, drop_patterns=[r"https?://"]))
    assert out == {0: "shorter than 3 characters", 2: "longer than 40 characters", 3: "matches 'https?://'"}


def test_bad_filter_regex_is_a_spec_error():
    with pytest.raises(ValueError, match="not a valid regular expression"):
        FilterSpec(drop_patterns=["(unclosed"])


def test_group_cap_keeps_the_first_items_of_each_group():
    groups = ["ann", "bob", "ann", None, "ann", "bob", None, "ann"]
    assert cap_groups(groups, 2) == [4, 7]


def test_balance_reports_and_evens_classes():
    labels = ["ok"] * 90 + ["bad"] * 10
    assert class_counts(labels, ["ok", "bad"]) == {"ok": 90, "bad": 10}
    w = class_weights(labels, ["ok", "bad"])
    assert w["bad"] * 10 == pytest.approx(w["ok"] * 90)
    dropped = undersample(labels, seed=0)
    kept = [lab for i, lab in enumerate(labels) if i not in set(dropped)]
    assert class_counts(kept, ["ok", "bad"]) == {"ok": 10, "bad": 10}
    assert undersample(labels, seed=0) == dropped  # seeded


def test_prior_weights_make_classes_count_in_their_production_shares():
    labels = ["ok"] * 75 + ["bad"] * 25  # a pool that over-samples "bad"
    w = prior_weights(labels, {"ok": 0.9, "bad": 0.1})
    assert w["bad"] * 25 / (w["bad"] * 25 + w["ok"] * 75) == pytest.approx(0.1)
    assert w["bad"] * 25 + w["ok"] * 75 == pytest.approx(100)  # the weights still sum to n
