"""Student kinds by name, smallest first. Each entry is ``module:Class``, imported on use so
heavy dependencies load only for the students that need them."""

from __future__ import annotations

import importlib
import json
import pickle
from pathlib import Path
from typing import Any

from graduate.errors import StudentError
from graduate.students.base import Student

STUDENTS: dict[str, str] = {
    "majority": "graduate.students.majority:MajorityStudent",
    "tfidf-logreg": "graduate.students.tfidf_logreg:TfidfLogregStudent",
    "embed-logreg": "graduate.students.embed_logreg:EmbedLogregStudent",
    "encoder": "graduate.students.encoder:EncoderStudent",
    "ensemble": "graduate.students.ensemble:EnsembleStudent",
    "lora-llm": "graduate.students.lora_llm:LoraLlmStudent",
    # multi-label tasks: the spec's kind, trained once per label (the pipeline wraps it)
    "one-vs-rest": "graduate.students.one_vs_rest:OneVsRestStudent",
}


# Kinds that wrap another kind (the pipeline picks them for the task): not rungs of the ladder.
WRAPPERS = frozenset({"one-vs-rest"})
# The ladder, smallest first: what `graduate train --ladder` climbs and `graduate students list` shows.
LADDER: list[str] = [k for k in STUDENTS if k not in WRAPPERS]


def student_class(kind: str) -> type:
    if kind not in STUDENTS:
        raise StudentError(f"unknown kind; known kinds: {sorted(STUDENTS)}", kind=kind)
    module, _, name = STUDENTS[kind].partition(":")
    return getattr(importlib.import_module(module), name)


def for_label_sets(kind: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The kind and params that train ``kind`` on label sets: a kind that takes them itself gets
    ``multi_label: true``; any other is trained once per label (``one-vs-rest``)."""
    cls = student_class(kind)
    if cls.multi_label:
        return kind, params
    if cls.takes_multi_label:
        return kind, {**params, "multi_label": True}
    return "one-vs-rest", {"base": kind, "base_params": params}


def make_student(kind: str, labels: list[str], params: dict[str, Any] | None = None) -> Student:
    return student_class(kind)(labels, **(params or {}))


def save_student(student: Student, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    student.save(directory)
    (directory / "kind.json").write_text(json.dumps({"kind": student.kind}))


def load_student(directory: Path) -> Student:
    marker = directory / "kind.json"
    if not marker.exists():
        raise StudentError(f"{directory} holds no saved student (kind.json missing); train one with `graduate run`")
    try:
        kind = json.loads(marker.read_text())["kind"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StudentError(f"{marker} is damaged ({type(exc).__name__}: {exc}); retrain the student (graduate train)") from None
    try:
        return student_class(kind).load(directory)
    except Exception as exc:
        if not _load_error(exc):
            raise
        # a half-copied or edited artifact: one line naming it, not a traceback (graduate serve, promote, predict)
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        raise StudentError(f"cannot load the saved student in {directory} ({reason}); retrain it (graduate train --student {kind})", kind=kind) from None


def _load_error(exc: Exception) -> bool:
    """Whether ``exc`` is what reading a damaged artifact raises: a short or garbled file (pickle,
    joblib, JSON), or the model libraries' own errors (torch's RuntimeError, safetensors'
    SafetensorError, onnxruntime's InvalidProtobuf ...), not a bug in graduate."""
    if isinstance(exc, (OSError, ValueError, KeyError, TypeError, EOFError, RuntimeError, pickle.UnpicklingError)):
        return True
    return type(exc).__module__.split(".")[0] in ("safetensors", "onnxruntime", "onnx", "torch", "joblib")
