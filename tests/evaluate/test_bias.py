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


def test_a_terms_fpr_is_split_into_the_comments_and_what_the_swap_itself_did():
    # 'sikh' is swapped into 10 non-toxic comments: 4 were flagged before the swap (they are
    # rude), the swap flags one more and clears none; 'gay' into 10 harmless ones: the swap flags 5.
    rows, p_orig, p_pert = [], {}, {}
    for i in range(10):
        rows.append((f"s{i}", f"the christian comment {i}", f"the sikh comment {i}", "ok"))
        p_orig[len(rows) - 1] = ("bad" if i < 4 else "ok", 0.6 if i < 4 else 0.1)
        p_pert[100 + len(rows) - 1] = ("bad" if i < 5 else "ok", 0.6 if i < 5 else 0.1)
    for i in range(10):
        rows.append((f"g{i}", f"the jew story {i}", f"the gay story {i}", "ok"))
        p_orig[len(rows) - 1] = ("ok", 0.1)
        p_pert[100 + len(rows) - 1] = ("bad" if i < 5 else "ok", 0.7 if i < 5 else 0.1)
    for i in range(20):  # comments naming no term, never flagged
        rows.append((f"p{i}", f"a plain line {i}", f"a plain line {i}", "ok"))
        p_orig[len(rows) - 1], p_pert[100 + len(rows) - 1] = ("ok", 0.1), ("ok", 0.1)
    orig, pert = pair_sets(rows)
    m = bias_pair_metrics(orig, pert, p_orig, p_pert, positive="bad", identity_terms=["sikh", "gay"], min_size=5)
    t = {x["term"]: x for x in m["terms"]}
    assert (t["sikh"]["fpr_perturbed"], t["sikh"]["fpr_same_items_original"]) == (pytest.approx(0.5), pytest.approx(0.4))
    assert (t["sikh"]["became_fp"], t["sikh"]["stopped_fp"], t["sikh"]["fpr_change"]) == (1, 0, pytest.approx(0.1))
    assert t["sikh"]["fpr_change_p"] == pytest.approx(1.0)  # one flip: chance
    assert (t["gay"]["became_fp"], t["gay"]["fpr_change"]) == (5, pytest.approx(0.5))
    assert t["gay"]["fpr_change_p"] == pytest.approx(2 * 0.5**5)  # exact McNemar: 5 of 5 discordant pairs one way
    # the same FPR on the swapped copy, but only gay's comes from the term
    assert t["sikh"]["fpr_perturbed"] == t["gay"]["fpr_perturbed"]
    assert (m["fpr_change"], m["fpr_change_term"]) == (pytest.approx(0.5), "gay")
    assert m["worst_term"] in ("sikh", "gay") and m["worst_term_fpr"] == pytest.approx(0.5) and m["fpr_perturbed"] == pytest.approx(0.25)


def test_label_sets_take_each_label_in_turn_as_the_positive_class():
    """Multi-label: a false positive for a label is a predicted set that holds it while gold lacks
    it; the top level shows the label the swap hurt most, gates read the worst label per figure,
    and a flip is any change of the predicted set."""
    from graduate.evaluate.bias import multi_label_bias_pair_metrics

    labels = ["insult", "threat"]
    rows = [
        ("1", "christian people are nice", "gay people are nice", ""),
        ("2", "the christian choir", "the gay choir", ""),
        ("3", "christian music is loud", "muslim music is loud", "insult"),
        ("4", "you christian idiot", "you gay idiot", "insult"),
    ]
    orig, pert = pair_sets(rows)
    p_orig = {0: ("", {"insult": 0.1, "threat": 0.1}), 1: ("", {"insult": 0.2, "threat": 0.1}),
              2: ("insult", {"insult": 0.7, "threat": 0.1}), 3: ("insult", {"insult": 0.9, "threat": 0.2})}
    # 'gay' swapped in: both harmless comments gain "insult", one also "threat"; the idiot one gains "threat"
    p_pert = {100: ("insult;threat", {"insult": 0.8, "threat": 0.6}), 101: ("insult", {"insult": 0.7, "threat": 0.1}),
              102: ("insult", {"insult": 0.7, "threat": 0.1}), 103: ("insult;threat", {"insult": 0.9, "threat": 0.7})}
    m = multi_label_bias_pair_metrics(orig, pert, p_orig, p_pert, labels=labels, identity_terms=["gay", "muslim"], min_size=1)
    ins, thr = m["per_label"]["insult"], m["per_label"]["threat"]
    gay_ins = next(t for t in ins["terms"] if t["term"] == "gay")
    gay_thr = next(t for t in thr["terms"] if t["term"] == "gay")
    # insult: negatives are comments 1 and 2 (both gay after the swap), both became false positives
    assert (ins["negatives_perturbed"], ins["fpr_original"], ins["fpr_perturbed"]) == (2, 0.0, 1.0)
    assert (gay_ins["fpr_perturbed"], gay_ins["fpr_change"], gay_ins["became_fp"]) == (1.0, 1.0, 2)
    # threat: every comment is a negative; 2 of 4 flagged after the swap, both with gay in them (3 gay comments)
    assert (thr["negatives_perturbed"], thr["fpr_perturbed"]) == (4, 0.5)
    assert gay_thr["fpr_perturbed"] == pytest.approx(2 / 3) and gay_thr["fpr_change"] == pytest.approx(2 / 3)
    assert ins["mean_abs_shift"] == pytest.approx((0.7 + 0.5 + 0.0 + 0.0) / 4) and thr["max_abs_shift"] == pytest.approx(0.5)
    # the headline: insult (the swap raised its FPR by 1.0, threat's by 2/3); gates read the worst label per figure
    assert m["label"] == "insult" and m["fpr_change"] == 1.0 and m["terms"] == ins["terms"]
    assert m["max_over_labels"]["max_abs_shift"] == pytest.approx(0.7) and m["worst_label_of"]["max_abs_shift"] == "insult"
    assert m["worst_label_of"]["fpr_change"] == "insult"
    # insult's gay FPR (1.0) is no higher than its overall FPR (1.0): the worst term above overall is threat's
    assert m["max_over_labels"]["worst_term_fpr"] == pytest.approx(2 / 3) and m["worst_label_of"]["worst_term_fpr"] == "threat"
    # set-level flips: three of the four changed pairs got another set (the muslim one kept "insult")
    assert (m["flipped"], m["flip_rate"]) == (3, 0.75) and m["max_over_labels"]["flip_rate"] == 0.75
    # a predictor without answers
    assert multi_label_bias_pair_metrics(orig, pert, {}, {}, labels=labels, identity_terms=["gay"]) is None


def test_label_set_bias_figures_are_rates_and_gates_read_the_worst_label():
    """Property (hypothesis): for any gold and answered sets, probabilities and texts, every rate is in
    [0, 1], each gate figure is the largest over the labels, and its label holds that value."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from graduate.evaluate.bias import GATE_FIGURES, multi_label_bias_pair_metrics
    from graduate.formats import labelset

    labels = ["a", "b", "c"]
    sets = st.sets(st.sampled_from(labels)).map(lambda s: labelset.encode(s, labels))
    item = st.tuples(sets, sets, sets, st.lists(st.floats(0, 1), min_size=6, max_size=6), st.booleans(), st.sampled_from(["gay", "muslim", ""]))

    @settings(max_examples=80, deadline=None)
    @given(st.lists(item, min_size=1, max_size=25))
    def check(items):
        rows = [(str(i), f"t{i}", f"t{i} {term}" if swap else f"t{i}", gold) for i, (gold, _, _, _, swap, term) in enumerate(items)]
        orig, pert = pair_sets(rows)
        p_o = {i: (a, dict(zip(labels, ps[:3]))) for i, (_, a, _, ps, _, _) in enumerate(items)}
        p_p = {100 + i: (b, dict(zip(labels, ps[3:]))) for i, (_, _, b, ps, _, _) in enumerate(items)}
        m = multi_label_bias_pair_metrics(orig, pert, p_o, p_p, labels=labels, identity_terms=["gay", "muslim"], min_size=1)
        assert m is not None and m["label"] in labels
        for lab, fig in m["per_label"].items():
            for key in ("fpr_original", "fpr_perturbed", "flip_rate", "worst_term_fpr"):
                assert fig[key] is None or 0 <= fig[key] <= 1
        for key in GATE_FIGURES:
            if key == "flip_rate":
                assert m["max_over_labels"][key] == m["flip_rate"] and (m["flip_rate"] is None or 0 <= m["flip_rate"] <= 1)
                continue
            values = [fig[key] for fig in m["per_label"].values() if fig.get(key) is not None]
            assert m["max_over_labels"][key] == (max(values) if values else None)
            if values:
                assert m["per_label"][m["worst_label_of"][key]][key] == max(values)

    check()


def test_a_pair_that_shares_no_item_id_says_so(tmp_path, monkeypatch):
    """The swapped copy's source read without its id column (row numbers): nothing pairs up, and
    the assessment says why instead of an empty table and gates 'not measured'."""
    import yaml

    from eval_project import add_evaluation, copy_tiny
    from graduate import Project

    monkeypatch.delenv("GRADUATE_STORE_URL", raising=False)
    project = add_evaluation(copy_tiny(tmp_path / "tiny"), gates=[])
    spec = yaml.safe_load((project / "graduate.yaml").read_text())
    next(d for d in spec["data"] if d["name"] == "bias_fuzzed").pop("id_column")
    (project / "graduate.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    proj = Project.load(project)
    proj.run()
    bias = proj.latest_assessment()["bias"]
    assert all(b is None for b in bias["students"].values())
    assert bias["teacher_note"].startswith("bias.original and bias.fuzzed share no item id, so no pair is measured")
