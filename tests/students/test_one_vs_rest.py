"""The multi-label student (any single-label kind trained once per label): label sets in and out,
per-label probabilities, thresholds tuned on a validation share of the training data only,
identical after save and load; a label no item has is never predicted."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graduate.errors import StudentError
from graduate.formats import labelset
from graduate.students.registry import load_student, make_student, save_student

LABELS = ["sport", "money", "weather", "unused"]
WORDS = {"sport": "goal match striker league", "money": "bank loan interest price", "weather": "rain storm sunny cold"}


def _data(n: int = 300, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    texts, sets = [], []
    for _ in range(n):
        chosen = [lab for lab in WORDS if rng.random() < 0.4] or [rng.choice(list(WORDS))]
        words = [w for lab in chosen for w in rng.sample(WORDS[lab].split(), 2)] + [f"w{rng.randint(0, 50)}" for _ in range(4)]
        rng.shuffle(words)
        texts.append(" ".join(words))
        sets.append(labelset.encode(chosen, LABELS))
    return texts, sets


@pytest.mark.parametrize("base", ["tfidf-logreg", "majority"])
def test_label_sets_in_and_out_and_identical_after_load(base, tmp_path):
    texts, sets = _data()
    student = make_student("one-vs-rest", LABELS, {"base": base, "base_params": {"max_iter": 300} if base == "tfidf-logreg" else {}})
    student.fit(texts[:240], sets[:240])
    probs = student.predict_proba(texts[240:])
    assert probs.shape == (60, 4) and ((probs >= 0) & (probs <= 1)).all()
    decided = student.decide(probs)
    assert all(labelset.decode(d, LABELS) is not None for d in decided)
    assert not any("unused" in labelset.decode(d, LABELS) for d in decided)  # never in training: never predicted
    assert student.report["labels_without_examples"] == ["unused"] and set(student.report["thresholds"]) == set(LABELS)
    assert student.at_least_one  # every training item has a label
    save_student(student, tmp_path / "s")
    again = load_student(tmp_path / "s")
    assert again.kind == "one-vs-rest" and again.labels == LABELS and again.multi_label
    assert np.array_equal(again.predict_proba(texts[240:]), probs) and again.decide(probs) == decided
    if base == "tfidf-logreg":
        exact = np.mean([d == g for d, g in zip(decided, sets[240:])])
        assert exact > 0.8, exact  # learns each label from its words


def test_bad_input_is_a_clear_error():
    with pytest.raises(StudentError, match="unknown student kind 'gpt'"):
        make_student("one-vs-rest", LABELS, {"base": "gpt"})
    with pytest.raises(StudentError, match=r"unknown params \['CC'\]"):
        make_student("one-vs-rest", LABELS, {"base_params": {"CC": 1}})
    with pytest.raises(StudentError, match="not trained per label yet"):
        make_student("one-vs-rest", LABELS, {"base": "ensemble"})
    texts, sets = _data(20)
    with pytest.raises(StudentError, match="label sets of"):
        make_student("one-vs-rest", LABELS).fit(texts, ["sport;nope"] * 20)
    with pytest.raises(StudentError, match="at least 10"):
        make_student("one-vs-rest", LABELS).fit(texts[:3], sets[:3])


def test_the_encoder_takes_label_sets_itself(tmp_path, tiny_encoder):
    texts, sets = _data(200)
    params = {"base_model": str(tiny_encoder), "multi_label": True, "epochs": 3, "max_length": 32, "batch_size": 16, "agreement_items": 32, "save_float": False}
    student = make_student("encoder", LABELS, params)
    assert student.multi_label
    student.fit(texts[:160], sets[:160])
    probs = student.predict_proba(texts[160:])
    assert probs.shape == (40, 4) and ((probs >= 0) & (probs <= 1)).all() and not np.allclose(probs.sum(axis=1), 1.0)
    decided = student.decide(probs)
    assert all(labelset.decode(d, LABELS) for d in decided)  # at least one label: every training item has one
    rep = student.report["multi_label"]
    assert rep["train_items"] + rep["validation_items"] == 160 and set(rep["thresholds"]) == set(LABELS)
    save_student(student, tmp_path / "enc")
    again = load_student(tmp_path / "enc")
    assert again.multi_label and again.thresholds == student.thresholds
    assert np.array_equal(again.predict_proba(texts[160:]), probs) and again.decide(probs) == decided


def test_tfidf_takes_label_sets_itself_with_shared_features(tmp_path):
    texts, sets = _data()
    student = make_student("tfidf-logreg", LABELS, {"multi_label": True, "max_iter": 300})
    student.fit(texts[:240], sets[:240])
    probs = student.predict_proba(texts[240:])
    assert probs.shape == (60, 4) and ((probs >= 0) & (probs <= 1)).all()
    assert (probs[:, 3] == 0).all()  # "unused": never in training
    decided = student.decide(probs)
    assert np.mean([d == g for d, g in zip(decided, sets[240:])]) > 0.8
    save_student(student, tmp_path / "t")
    again = load_student(tmp_path / "t")
    assert again.multi_label and np.array_equal(again.predict_proba(texts[240:]), probs) and again.decide(probs) == decided
    # the same sets as scikit-learn's own (slow) path through the pipeline
    assert np.allclose(student.pipeline.predict_proba(texts[240:]), probs)


@pytest.mark.parametrize("tfidf", [False, True])
def test_embed_logreg_takes_label_sets_itself_embedding_each_text_once(tfidf, tmp_path):
    """embed-logreg on label sets: one embedding per text shared by every label's regression,
    optionally with TF-IDF columns beside it; identical after save and load."""
    pytest.importorskip("sentence_transformers")
    texts, sets = _data(200)
    student = make_student("embed-logreg", LABELS, {"multi_label": True, "tfidf": tfidf, "C": 16})
    calls = []
    embed = student._embed
    student._embed = lambda t: (calls.append(len(t)), embed(t))[1]  # count what reaches the encoder
    student.fit(texts[:160], sets[:160])
    assert calls == [160]  # the held-out split and the final fit reuse one embedding
    probs = student.predict_proba(texts[160:])
    assert probs.shape == (40, 4) and (probs[:, 3] == 0).all()
    decided = student.decide(probs)
    assert np.mean([d == g for d, g in zip(decided, sets[160:])]) > 0.6
    assert set(student.report["multi_label"]["thresholds"]) == set(LABELS)
    save_student(student, tmp_path / "e")
    again = load_student(tmp_path / "e")
    assert again.multi_label and again.params["tfidf"] is tfidf and (again.vectoriser is not None) is tfidf
    assert np.allclose(again.predict_proba(texts[160:]), probs) and again.decide(probs) == decided


def test_an_ensemble_of_label_set_students_averages_margins_past_each_threshold(tmp_path):
    """A multi-label ensemble: members trained on label sets (tfidf-logreg itself, majority per
    label), each member's probability read against its own threshold; with one member weighted
    to nothing it decides exactly as that member; identical after save and load."""
    texts, sets = _data()
    params = {"multi_label": True, "members": [{"kind": "tfidf-logreg", "params": {"max_iter": 300}, "weight": 1.0}, {"kind": "majority", "weight": 1e-9}]}
    ens = make_student("ensemble", LABELS, params)
    ens.fit(texts[:240], sets[:240])
    assert [m.kind for m in ens.members] == ["tfidf-logreg", "one-vs-rest"] and all(m.multi_label for m in ens.members)
    probs = ens.predict_proba(texts[240:])
    assert probs.shape == (60, 4) and ens.thresholds == [0.5] * 4 and ens.at_least_one
    tfidf = ens.members[0]
    assert ens.decide(probs) == tfidf.decide(tfidf.predict_proba(texts[240:]))  # the other member weighs nothing
    save_student(ens, tmp_path / "ens")
    again = load_student(tmp_path / "ens")
    assert again.multi_label and again.at_least_one and np.allclose(again.predict_proba(texts[240:]), probs)
    # equal weights: a label is in when the mean margin is positive
    even = make_student("ensemble", LABELS, {**params, "members": [{"kind": "tfidf-logreg", "params": {"max_iter": 300}}, {"kind": "tfidf-logreg", "params": {"max_iter": 300, "C": 0.5}}]})
    even.fit(texts[:240], sets[:240])
    assert np.mean([d == g for d, g in zip(even.decide(even.predict_proba(texts[240:])), sets[240:])]) > 0.8


def test_the_encoder_learns_the_teachers_per_label_probabilities(tiny_encoder):
    """Soft labels on label sets: BCE against the teacher's per-label probability. A teacher that
    is sure "sport" never applies (p=0) pulls the student's P(sport) down where the hard sets say
    sport; the shape of the soft matrix is checked."""
    texts, sets = _data(200)
    params = {"base_model": str(tiny_encoder), "multi_label": True, "epochs": 8, "learning_rate": 3e-3, "max_length": 32, "batch_size": 16, "agreement_items": 32, "save_float": False, "quantise": False}
    sport = [i for i in range(160, 200) if "sport" in labelset.decode(sets[i], LABELS)]
    hard = make_student("encoder", LABELS, params)
    hard.fit(texts[:160], sets[:160])
    soft_matrix = np.array([labelset.indicator(s, LABELS) for s in sets[:160]], dtype=float)
    soft_matrix[:, 0] = 0.0  # the teacher's P(sport)
    soft_matrix[5] = np.nan  # an item without the teacher's probabilities trains on its hard set
    soft = make_student("encoder", LABELS, {**params, "soft_weight": 1.0})
    soft.fit(texts[:160], sets[:160], soft_labels=soft_matrix)
    p_hard = hard.predict_proba([texts[i] for i in sport])[:, 0].mean()
    p_soft = soft.predict_proba([texts[i] for i in sport])[:, 0].mean()
    assert p_soft < p_hard - 0.1, (p_soft, p_hard)
    assert soft.report["soft_labels"] is True
    with pytest.raises(StudentError, match="soft_labels has shape"):
        make_student("encoder", LABELS, params).fit(texts[:160], sets[:160], soft_labels=soft_matrix[:, :2])


def test_the_encoders_softmax_head_learns_label_sets_and_keeps_a_second_label(tmp_path, tiny_encoder):
    """head softmax: one more output ("none"), targets of 1/k on each of an item's k labels; the
    labels' probabilities sum to at most 1, each is thresholded on its own (so two labels can
    pass), "unused" never in training stays below every trained label, and save/load keeps it."""
    import torch

    from graduate.students.encoder import NONE_OUTPUT, _share_targets

    shares = _share_targets(torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.2, 0.6, 0.2], [0.1, 0.0, 0.0]]))
    none = 0.8 * 0.4 * 0.8  # the teacher's chance that no label applies
    expected = [[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0], [0.2 * (1 - none), 0.6 * (1 - none), 0.2 * (1 - none), none], [0.1, 0.0, 0.0, 0.9]]
    assert torch.allclose(shares, torch.tensor(expected)) and torch.allclose(shares.sum(-1), torch.ones(4))

    texts, sets = _data(200)
    params = {"base_model": str(tiny_encoder), "multi_label": True, "head": "softmax", "epochs": 40, "learning_rate": 3e-3, "max_length": 32,
              "batch_size": 16, "agreement_items": 32, "save_float": False, "quantise": False}
    student = make_student("encoder", LABELS, params)
    student.fit(texts[:160], sets[:160])
    assert student.model.config.num_labels == len(LABELS) + 1 and student.model.config.id2label[len(LABELS)] == NONE_OUTPUT
    assert student.report["head"] == "softmax"
    probs = student.predict_proba(texts[160:])
    assert probs.shape == (40, 4) and (probs >= 0).all() and (probs.sum(axis=1) <= 1 + 1e-9).all()
    assert (probs[:, 3] < probs[:, :3].max(axis=1)).all()  # "unused" never wins
    decided = [labelset.decode(d, LABELS) for d in student.decide(probs)]
    gold = [labelset.decode(s, LABELS) for s in sets[160:]]
    assert np.mean([set(d) == set(g) for d, g in zip(decided, gold)]) > 0.4  # the most common set alone: 0.1
    assert any(len(d) > 1 for d in decided)  # a second label passes its own threshold
    save_student(student, tmp_path / "enc")
    again = load_student(tmp_path / "enc")
    assert again.softmax_head and np.allclose(again.predict_proba(texts[160:]), probs)


def test_softmax_head_targets_are_distributions_for_any_sets_or_probabilities():
    """_share_targets over any 0/1 sets or per-label probabilities (hypothesis): non-negative rows
    summing to 1, "none" all of an empty set, labels in proportion to their probabilities."""
    import torch
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from hypothesis.extra.numpy import arrays

    from graduate.students.encoder import _share_targets

    @settings(max_examples=200, deadline=None)
    @given(arrays(np.float32, st.tuples(st.integers(1, 6), st.integers(1, 9)), elements=st.one_of(st.just(0.0), st.just(1.0), st.floats(0, 1, width=32))))
    def check(y):
        t = _share_targets(torch.tensor(y)).double().numpy()
        assert t.shape == (y.shape[0], y.shape[1] + 1) and (t >= -1e-9).all()
        assert np.allclose(t.sum(axis=1), 1.0, atol=1e-5)
        empty = y.sum(axis=1) == 0
        assert np.allclose(t[empty, -1], 1.0)
        for row, shares in zip(y[~empty], t[~empty]):
            if shares[-1] < 1 - 1e-6:  # some mass on the labels: in proportion to p
                assert np.allclose(shares[:-1] / shares[:-1].sum(), row / row.sum(), atol=1e-4)

    check()


def test_model_checks_and_head_answer_bad_input_in_one_line(tmp_path):
    """check_models on any odd path (hypothesis: Unicode, control characters, long names) names the
    param in one line and never raises anything else; a wrong head is refused when the spec is read."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    with pytest.raises(StudentError, match=r"head") as err:
        make_student("encoder", LABELS, {"multi_label": True, "head": "sigmoid"})
    assert "\n" not in str(err.value) and "per_label" in str(err.value)

    @settings(max_examples=60, deadline=None)
    @given(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=300))
    def check(name):
        path = str(tmp_path / "no-such" / name)
        odd = (("embed-logreg", {"more_base_models": [path]}, "params.more_base_models[0]"), ("encoder", {"base_model": path}, "params.base_model"), ("lora-llm", {"base_model": path}, "params.base_model"))
        for kind, params, field in odd:
            with pytest.raises(StudentError) as err:
                make_student(kind, LABELS, params).check_models()
            message = str(err.value)
            assert field in message and "does not exist" in message, message

    check()
    not_a_model = tmp_path / "plain-dir"
    not_a_model.mkdir()
    with pytest.raises(StudentError, match=r"params.base_model .* is not a Hugging Face model directory \(no config.json\)"):
        make_student("encoder", LABELS, {"base_model": str(not_a_model), "layers": 2}).check_models()
    broken = tmp_path / "broken-config"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "bert", "num_hidden_layers": ', encoding="utf-8")
    (broken / "model.safetensors").write_bytes(b"")
    with pytest.raises(StudentError, match=r"params.base_model .*broken-config.*: its config.json is unreadable") as err:
        make_student("encoder", LABELS, {"base_model": str(broken), "layers": 2}).check_models()
    assert "\n" not in str(err.value).strip()


def test_max_labels_keeps_the_labels_furthest_past_their_thresholds():
    from graduate.students.thresholds import decide_sets

    probs = np.array([[0.9, 0.8, 0.7], [0.6, 0.95, 0.1], [0.1, 0.2, 0.3], [0.55, 0.55, 0.1]])
    thresholds = [0.5, 0.9, 0.5]
    assert decide_sets(probs, ["a", "b", "c"], thresholds, False) == ["a;c", "a;b", "(none)", "a"]
    # margins 0.4/-0.1/0.2 and 0.1/0.05; ties keep the spec's order
    assert decide_sets(probs, ["a", "b", "c"], thresholds, False, max_labels=1) == ["a", "a", "(none)", "a"]
    assert decide_sets(np.array([[0.7, 0.7, 0.1]]), ["a", "b", "c"], [0.5, 0.5, 0.5], True, max_labels=1) == ["a"]


def test_max_labels_is_kept_through_save_and_load(tmp_path):
    texts = [f"w{j}a w{j}b item {i}" for i in range(30) for j in range(3)]
    sets = [f"l{j}" for i in range(30) for j in range(3)]
    student = make_student("tfidf-logreg", ["l0", "l1", "l2"], {"multi_label": True, "max_labels": 1})
    student.fit(texts, sets)
    both = ["w0a w0b w2a w2b"]
    save_student(student, tmp_path / "s")
    back = load_student(tmp_path / "s")
    probs = back.predict_proba(both)
    assert back.decide(probs) == student.decide(probs) and len(back.decide(probs)[0].split(";")) == 1
    assert back.decision_rule()(probs) == back.decide(probs)
    uncapped = make_student("tfidf-logreg", ["l0", "l1", "l2"], {"multi_label": True})
    uncapped.fit(texts, sets)
    assert uncapped.decide(uncapped.predict_proba(both)) == ["l0;l2"]


def _one_of_two_named(n: int, seed: int) -> tuple[list[str], list[str]]:
    """Each text names its own label twice and one other label once; 80% carry their own label,
    the rest none: a set never holds two labels, as under ``parse.max_labels: 1``."""
    rng = random.Random(seed)
    words = {"a": "apple apricot avocado".split(), "b": "banana berry blueberry".split(), "c": "cherry coconut citrus".split()}
    texts, sets = [], []
    for _ in range(n):
        own = rng.choice("abc")
        other = rng.choice([lab for lab in "abc" if lab != own])
        tokens = [rng.choice(words[own]), rng.choice(words[own]), rng.choice(words[other])] + [f"w{rng.randint(0, 40)}" for _ in range(3)]
        rng.shuffle(tokens)
        texts.append(" ".join(tokens))
        sets.append(own if rng.random() < 0.8 else "(none)")
    return texts, sets


def test_thresholds_are_tuned_for_the_sets_max_labels_serves():
    """Tuned without the cap, the thresholds stay high to keep the other named label out; capped at
    one label a lower threshold is better (the cap drops the other label). The capped student's
    thresholds serve better sets on fresh items than the uncapped tuning's thresholds capped."""
    from graduate.students.thresholds import decide_sets, indicators, micro_f1

    labels = ["a", "b", "c"]
    texts, sets = _one_of_two_named(200, 0)
    fresh, fresh_sets = _one_of_two_named(400, 100)
    truth = indicators(fresh_sets, labels, "test")
    scores = {}
    for cap in (None, 1):
        student = make_student("tfidf-logreg", labels, {"multi_label": True, "max_labels": cap})
        student.fit(texts, sets)
        served = decide_sets(student.predict_proba(fresh), labels, student.thresholds, student.at_least_one, max_labels=1)
        scores[cap] = (micro_f1(truth, indicators(served, labels, "test")), student.thresholds, student.report["multi_label"]["validation_micro_f1"])
    assert max(scores[1][1]) < min(scores[None][1]), scores
    assert scores[1][0] > scores[None][0] + 0.02, scores
    assert 0.8 < scores[1][2] < 1, scores  # the report scores the capped sets too


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.5, 0.7, 0.9, 1.0]), min_size=4, max_size=4), min_size=1, max_size=8),
    st.lists(st.sampled_from([0.1, 0.3, 0.5, 0.7]), min_size=4, max_size=4),
    st.sampled_from([None, 1, 2, 3, 4]),
)
def test_tuning_keeps_the_same_labels_as_decide_sets(rows, cuts, cap):
    """The vectorised cap the tuning scores is the one prediction applies, ties included."""
    from graduate.students.thresholds import decide_sets, indicators, passing

    labels = ["a", "b", "c", "d"]
    probs = np.array(rows)
    kept = passing(probs, np.array(cuts), cap)
    assert (kept == indicators(decide_sets(probs, labels, cuts, False, cap), labels, "test").astype(bool)).all()
