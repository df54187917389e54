"""Every student kind in the registry: fit -> predict -> save -> load gives identical predictions."""


import numpy as np
import pytest

from graduate.errors import StudentError
from graduate.students.registry import STUDENTS, load_student, make_student, save_student, student_class

LABELS = ["ok", "bad"]
# Single-label kinds; the multi-label wrapper (one-vs-rest) keeps its contract in test_one_vs_rest.py.
SINGLE = sorted(k for k in STUDENTS if not student_class(k).multi_label)


# Few steps and short texts for the model-based kinds: the contract, not the quality, is under test.
FAST = {
    "encoder": {"epochs": 1, "max_length": 48, "batch_size": 16, "agreement_items": 64},  # on a tiny local encoder (below)
    "embed-logreg": {"max_length": 64},
    "lora-llm": {"max_steps": 3, "batch_size": 4, "max_text_tokens": 32, "answers": {"ok": '{"is_bad": 0}', "bad": '{"is_bad": 1}'}},
}


@pytest.fixture
def fast_params(request):
    def params(kind):
        p = dict(FAST.get(kind, {}))
        if kind == "lora-llm":
            p["base_model"] = str(request.getfixturevalue("tiny_causal_lm"))
        if kind == "encoder":  # the packaged MiniLM is exercised in test_encoder.py
            p["base_model"] = str(request.getfixturevalue("tiny_encoder"))
        if kind == "ensemble":  # a neural and a lexical member, as in the example project
            p["members"] = [{"kind": "encoder", "params": params("encoder")}, {"kind": "tfidf-logreg", "weight": 2}]
        return p

    return params


@pytest.mark.parametrize("kind", SINGLE)
def test_fit_predict_save_load(kind, data, tmp_path, fast_params):
    texts, labels = data
    student = make_student(kind, LABELS, fast_params(kind))
    student.fit(texts[:120], labels[:120])
    probs = student.predict_proba(texts[120:])
    assert probs.shape == (len(texts) - 120, 2)
    assert np.allclose(probs.sum(axis=1), 1.0)
    save_student(student, tmp_path / "s")
    again = load_student(tmp_path / "s")
    assert again.kind == kind and again.labels == LABELS
    assert np.array_equal(again.predict_proba(texts[120:]), probs)


@pytest.mark.parametrize("kind", SINGLE)
def test_one_class_is_a_clear_error(kind):
    with pytest.raises(StudentError, match="one class only"):
        make_student(kind, LABELS).fit(["a", "b"], ["ok", "ok"])


@pytest.mark.parametrize("kind", sorted(STUDENTS))
def test_unknown_params_are_refused(kind):
    with pytest.raises(StudentError, match=r"unknown params \['learning_rat'\]"):
        make_student(kind, LABELS, {"learning_rat": 1})


def test_tfidf_learns_something(data):
    texts, labels = data
    student = make_student("tfidf-logreg", LABELS, {"min_df": 1})
    student.fit(texts, labels)
    pred = [LABELS[i] for i in student.predict_proba(texts).argmax(axis=1)]
    assert np.mean([p == g for p, g in zip(pred, labels)]) > 0.9  # fits its own training data


def test_load_from_empty_dir_is_clear(tmp_path):
    with pytest.raises(StudentError, match="holds no saved student"):
        load_student(tmp_path)


@pytest.mark.parametrize("kind", list(STUDENTS))
def test_every_kind_declares_its_capabilities_and_typed_params(kind):
    # Issue 13: capabilities are declared on the kind (never probed with getattr), and its params
    # are a typed model whose defaults are the kind's defaults.
    from graduate.students.base import StudentBase
    from graduate.students.params import Params

    cls = student_class(kind)
    assert issubclass(cls, StudentBase) and cls.kind == kind
    assert isinstance(cls.needs_accelerator, bool) and isinstance(cls.soft_labels, bool) and isinstance(cls.is_ensemble, bool) and isinstance(cls.multi_label, bool)
    assert issubclass(cls.Params, Params) and cls.DEFAULTS == cls.Params().model_dump()
    assert all(f.description for f in cls.Params.model_fields.values())
    assert cls.is_ensemble == hasattr(cls, "from_members")
