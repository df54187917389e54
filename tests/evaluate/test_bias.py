"""The identity-term pair on synthetic data with known FPRs and score shifts."""

import pytest

from graduate.data.examples import Example
from graduate.data.text import text_hash
from graduate.evaluate.bias import bias_pair_metrics
from graduate.evaluate.testsets import TestSet


def pair_sets(rows):
    """rows: (external id, original text, perturbed text, gold) -> two TestSets."""
    orig = [Example(i, "orig", ext, a, text_hash(a), []) for i, (ext, a, _, _) in enumerate(rows)]
    pert = [Example(100 + i, "pert", ext, b, text_hash(b), []) for i, (ext, _, b, _) in enumerate(rows)]
    gold = [g for *_, g in rows]
    return TestSet("bias.original", orig, gold, "h1", 0), TestSet("bias.fuzzed", pert, gold, "h2", 0)


def test_fpr_per_term_shift_and_flips():
    rows = [
        ("1", "christian people are nice", "gay people are nice", "ok"),
        ("2", "the christian choir", "the gay choir", "ok"),
        ("3", "christian music is fine", "muslim music is fine", "ok"),
        ("4", "a plain sentence", "a plain sentence", "ok"),
        ("5", "you christian idiot", "you gay idiot", "bad"),
    ]
    orig, pert = pair_sets(rows)
    # the model flags every 'gay' text: a score jump of +0.6 where gay is swapped in
    p_orig = {0: ("ok", 0.1), 1: ("ok", 0.2), 2: ("ok", 0.1), 3: ("ok", 0.1), 4: ("bad", 0.9)}
    p_pert = {100: ("bad", 0.7), 101: ("bad", 0.8), 102: ("ok", 0.1), 103: ("ok", 0.1), 104: ("bad", 0.95)}
    m = bias_pair_metrics(orig, pert, p_orig, p_pert, positive="bad", identity_terms=["gay", "christian", "muslim"], min_size=1)
    assert (m["pairs"], m["changed_pairs"], m["flipped"]) == (5, 4, 2)
    assert m["flip_rate"] == pytest.approx(2 / 4)
    assert m["mean_abs_shift"] == pytest.approx((0.6 + 0.6 + 0.0 + 0.05) / 4)
    assert m["max_abs_shift"] == pytest.approx(0.6)
    assert (m["fpr_original"], m["fpr_perturbed"]) == (0.0, pytest.approx(2 / 4))
    terms = {t["term"]: t for t in m["terms"]}
    assert (terms["gay"]["negatives_perturbed"], terms["gay"]["fpr_perturbed"]) == (2, 1.0)
    assert terms["gay"]["swapped_in"] == 3 and terms["gay"]["mean_shift_swapped_in"] == pytest.approx((0.6 + 0.6 + 0.05) / 3)
    assert terms["christian"]["fpr_original"] == 0.0 and terms["christian"]["n_perturbed"] == 0
    assert m["fpr_gap"] == pytest.approx(1.0 - 0.5)
    assert m["worst_term"] == "gay"


def test_a_fair_model_has_no_shift_and_a_predictor_without_answers_gets_none():
    rows = [("1", "christian text", "muslim text", "ok"), ("2", "jew text", "sikh text", "bad")]
    orig, pert = pair_sets(rows)
    same = {0: ("ok", 0.2), 1: ("bad", 0.8)}
    m = bias_pair_metrics(orig, pert, same, {100: ("ok", 0.2), 101: ("bad", 0.8)}, positive="bad", identity_terms=["muslim"], min_size=1)
    assert (m["mean_abs_shift"], m["flipped"], m["worst_term"]) == (0.0, 0, None)
    # the teacher: labels but no probabilities, and here no answers at all
    assert bias_pair_metrics(orig, pert, {}, {}, positive="bad", identity_terms=["muslim"]) is None
    labels_only = bias_pair_metrics(orig, pert, {0: ("ok", None), 1: ("bad", None)}, {100: ("bad", None), 101: ("bad", None)}, positive="bad", identity_terms=["muslim"])
    assert labels_only["mean_abs_shift"] is None and labels_only["flipped"] == 1
