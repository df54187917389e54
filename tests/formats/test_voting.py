"""Votes: self-consistency majority, ensembles, audit weights, disagreement (pure functions)."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from graduate.formats.voting import audit_weight, disagreement, ensemble_vote, majority_vote


def test_majority_vote_share_is_the_confidence():
    v = majority_vote(["bad", "ok", "bad", "bad", None])
    assert (v.label, v.votes, v.tie) == ("bad", 4, False)
    assert v.share == pytest.approx(0.75)


def test_a_tie_has_no_winner_unless_the_first_answer_breaks_it():
    assert majority_vote(["ok", "bad"]).label is None
    assert majority_vote(["ok", "bad"]).tie
    assert majority_vote(["ok", "bad"], tie_break="first").label == "ok"
    assert majority_vote([None, None]).label is None and majority_vote([]).share == 0.0


def test_weighted_ensemble_follows_the_better_member():
    members = {"weak a": "bad", "weak b": "bad", "strong": "ok"}
    assert ensemble_vote(members).label == "bad"
    acc = {"weak a": 0.6, "weak b": 0.6, "strong": 0.95}
    v = ensemble_vote(members, method="weighted", accuracies=acc)
    assert v.label == "ok"
    assert v.share == pytest.approx(audit_weight(0.95) / (audit_weight(0.95) + 2 * audit_weight(0.6)))


def test_weighted_vote_needs_accuracies_and_chance_members_weigh_nothing():
    with pytest.raises(ValueError):
        ensemble_vote({"a": "ok", "b": "bad"}, method="weighted")
    assert audit_weight(0.5) == 0.0 and audit_weight(None) == 0.0
    assert audit_weight(0.9) == pytest.approx(math.log(9))


def test_disagreement_counts_only_repeated_requests():
    assert disagreement([["ok"], ["ok", "ok"], ["ok", "bad", "ok"], [None, "bad"]]) == (2, 1)


@given(st.lists(st.sampled_from(["ok", "bad", None]), max_size=12))
def test_vote_is_a_most_common_answer(labels):
    v = majority_vote(labels, tie_break="first")
    answered = [x for x in labels if x is not None]
    if not answered:
        assert v.label is None
        return
    assert answered.count(v.label) == max(answered.count(x) for x in set(answered))
    assert v.share == pytest.approx(answered.count(v.label) / len(answered))


# -- multi-label: label sets voted per label ------------------------------------------------------
ORDER = ["care", "loyalty", "purity"]


def test_label_sets_are_voted_per_label():
    from graduate.formats import labelset

    v = majority_vote(["care;loyalty", "care", "care;purity", None], order=ORDER)
    assert v.label == "care" and v.votes == 3 and v.counts == {"care": 3.0, "loyalty": 1.0, "purity": 1.0}
    assert v.share == pytest.approx(2 / 3)  # the least agreed decision: loyalty out by 2 of 3
    assert v.per_label == pytest.approx({"care": 1.0, "loyalty": 1 / 3, "purity": 1 / 3})  # the soft label
    assert majority_vote(["care", "loyalty"]).per_label is None  # single-label votes have a distribution of their own
    assert labelset.decode(v.label, ORDER) == {"care"}
    v = majority_vote(["care;loyalty", "loyalty", "(none)"], order=ORDER)
    assert v.label == "loyalty"  # not the whole-set plurality: no set repeats
    tie = majority_vote(["care", "loyalty"], order=ORDER)
    assert tie.tie and tie.label is None
    assert majority_vote(["care", "loyalty"], order=ORDER, tie_break="first").label == "care"
    weighted = ensemble_vote({"a": "care", "b": "loyalty", "c": "loyalty"}, method="weighted", accuracies={"a": 0.95, "b": 0.6, "c": 0.6}, order=ORDER)
    assert weighted.label == "care"  # one strong member outweighs two weak ones, per label
    assert majority_vote([None, None], order=ORDER).label is None


def test_a_voted_set_keeps_no_more_labels_than_an_answer_may_give():
    """Three answers of two labels each hold all three by majority: a set parse.max_labels 2
    refuses from the teacher itself. The labels with the most votes stay (ties: the first answer's)."""
    uncapped = majority_vote(["care;loyalty", "loyalty;purity", "care;purity"], order=ORDER)
    assert uncapped.label == "care;loyalty;purity"
    v = majority_vote(["care;loyalty", "loyalty;purity", "care;purity"], order=ORDER, max_labels=2)
    assert v.label == "care;loyalty" and v.share == pytest.approx(1 / 3)  # purity left out against 2 of 3 votes
    assert v.per_label == uncapped.per_label  # the soft label still counts every vote
    w = ensemble_vote({"a": "loyalty;purity", "b": "care;purity", "c": "care;purity"}, order=ORDER, max_labels=1)
    assert w.label == "purity"  # the most votes first
    assert majority_vote(["care;loyalty", "care;loyalty"], order=ORDER, max_labels=2).label == "care;loyalty"


@given(st.lists(st.lists(st.sampled_from(ORDER), min_size=1, max_size=2, unique=True), min_size=1, max_size=7), st.sampled_from([1, 2]))
def test_any_vote_over_capped_answers_is_capped(sets, most):
    from graduate.formats import labelset

    answers = [labelset.encode(s[:most], ORDER) for s in sets]
    v = majority_vote(answers, order=ORDER, tie_break="first", max_labels=most)
    assert v.label is not None and len(labelset.decode(v.label, ORDER)) <= most
    free = majority_vote(answers, order=ORDER, tie_break="first")
    assert labelset.decode(v.label, ORDER) <= labelset.decode(free.label, ORDER)  # only ever drops labels
