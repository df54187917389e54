"""Duplicates, rule filters, group cap and balance on synthetic data with known truth."""

import random
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graduate.data.balance import class_counts, class_weights, label_set_prior_weights, prior_weights, undersample, undersample_label_sets
from graduate.formats import labelset
from graduate.data.dedupe import exact_duplicates, near_duplicates
from graduate.data.filters import cap_groups, rule_filter
from graduate.spec.text import is_blank
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


LABELS = ["care", "purity", "loyalty"]
label_sets = st.lists(st.sets(st.sampled_from(LABELS)).map(lambda s: labelset.encode(s, LABELS)), min_size=1, max_size=60)


@settings(max_examples=150, deadline=None)
@given(label_sets, st.floats(0.01, 0.99))
def test_multi_label_prior_weights_reach_a_label_share_and_keep_the_sum(sets, share):
    w, reached = label_set_prior_weights(sets, LABELS, {"care": share})
    assert len(w) == len(sets) and all(x > 0 for x in w)
    assert sum(w) == pytest.approx(len(sets))
    carry = [i for i, s in enumerate(sets) if "care" in (labelset.decode(s, LABELS) or ())]
    if 0 < len(carry) < len(sets):  # a label on no item, or on every item, cannot move
        assert sum(w[i] for i in carry) / len(sets) == pytest.approx(share, abs=1e-3) == reached["care"]
    else:
        assert w == pytest.approx([1.0] * len(sets))


def test_multi_label_prior_weights_rake_several_labels_at_once():
    rng = np.random.default_rng(0)
    sets = [labelset.encode({lab for lab in LABELS if rng.random() < p}, LABELS) for p in rng.uniform(0.1, 0.6, 400)]
    target = {"care": 0.1, "purity": 0.5, "loyalty": 0.3}
    w, reached = label_set_prior_weights(sets, LABELS, target)
    for lab, share in target.items():
        got = sum(x for x, s in zip(w, sets) if lab in (labelset.decode(s, LABELS) or ())) / len(sets)
        assert got == pytest.approx(share, abs=1e-3) and reached[lab] == pytest.approx(got)


@settings(max_examples=150, deadline=None)
@given(label_sets, st.integers(0, 5))
def test_multi_label_undersampling_keeps_every_label_at_or_above_the_rarest(sets, seed):
    def counts(kept):
        c = Counter(lab for s in kept for lab in (sorted(labelset.decode(s, LABELS) or []) or [labelset.NONE]))
        return c

    before = counts(sets)
    dropped = undersample_label_sets(sets, LABELS, seed=seed)
    assert dropped == undersample_label_sets(sets, LABELS, seed=seed) == sorted(set(dropped))  # seeded, each once
    kept = [s for i, s in enumerate(sets) if i not in set(dropped)]
    after = counts(kept)
    floor = min(before.values())
    assert set(after) == set(before) and min(after.values()) == floor  # no label is lost or falls below the rarest
    # nothing more can go: every kept item carries a label already at the floor
    assert all(any(after[lab] == floor for lab in (sorted(labelset.decode(s, LABELS) or []) or [labelset.NONE])) for s in kept)


@settings(max_examples=300, deadline=None)
@given(
    st.text(st.characters(categories=("Cc", "Cf", "Zs", "Zl", "Zp")) | st.sampled_from(["\u3164", "\u2800", "\ufe0f", "\U000e0041"]), max_size=12),
    st.text(st.characters(categories=("L", "N", "P", "S")), min_size=1, max_size=3),
    st.integers(0, 12),
)
def test_a_text_of_only_invisible_characters_is_blank_and_one_with_anything_to_see_is_not(invisible, visible, at):
    # zero-width spaces, a BOM, word joiners pass `not text.strip()`; /v1/feedback stored such a text as an item
    assert is_blank(invisible)
    if not any(c in "\u115f\u1160\u2800\u3164\uffa0" for c in visible):  # letters and symbols drawn as nothing (fillers)
        assert not is_blank(invisible[:at] + visible + invisible[at:])
