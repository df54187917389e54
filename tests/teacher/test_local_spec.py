"""`teacher: {kind: local, ...}` in the spec, the request options it adds, and the CLI's errors
for a bad model before anything starts (no model is loaded here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from teacher.live_teacher import cli_env

from graduate.errors import SpecError
from graduate.pipeline.project import Project
from graduate.spec import TeacherSpec, parse_spec
from graduate.teacher.local import LocalTeacher
from graduate.teacher.prompt import request_params
from graduate.teacher.registry import make_teacher

BASE = {"task": {"name": "t", "labels": ["ok", "bad"]}}


def teacher(**fields: object) -> dict:
    return {**BASE, "teacher": {"model": "qwen2.5-0.5b", "prompt": "Is it toxic? {text}", **fields}}


def test_local_teacher_spec_and_its_server_options() -> None:
    spec = parse_spec(teacher(kind="local", local={"n_ctx": 4096, "port": 8123, "max_restarts": 1}))
    assert spec.teacher.kind == "local" and spec.teacher.local.n_ctx == 4096 and spec.teacher.local.port == 8123
    with pytest.raises(SpecError, match=r"teacher: teacher.local applies to kind: local only"):
        parse_spec(teacher(kind="openai", local={"n_ctx": 4096}))
    with pytest.raises(SpecError, match=r"teacher.local.n_ctx: Input should be greater than or equal to 256"):
        parse_spec(teacher(kind="local", local={"n_ctx": 16}))
    with pytest.raises(SpecError, match=r"teacher.local.nctx: unknown field"):
        parse_spec(teacher(kind="local", local={"nctx": 4096}))


def test_logprobs_and_constrained_output_are_request_params_only_when_asked() -> None:
    plain = TeacherSpec.model_validate(teacher()["teacher"])
    assert request_params(plain) == {"temperature": 0.0}  # recorded calls keep their cache keys
    schema = {"type": "json_object", "schema": {"type": "object", "properties": {"is_bad": {"enum": [0, 1]}}}}
    soft = TeacherSpec.model_validate(teacher(logprobs=True, top_logprobs=3, response_format=schema)["teacher"])
    assert request_params(soft) == {"temperature": 0.0, "logprobs": True, "top_logprobs": 3, "response_format": schema}


def test_make_teacher_resolves_the_model_without_starting_anything(tiny_project: Path) -> None:
    path = tiny_project / "graduate.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["teacher"].update(kind="local", model="qwen2.5-0.5b")
    path.write_text(yaml.safe_dump(raw))
    backend = make_teacher(Project.load(tiny_project).spec.teacher)
    assert isinstance(backend, LocalTeacher)
    assert backend.server.model_path.name == "qwen2.5-0.5b-instruct-q4.gguf" and backend.server.model_path.exists()
    assert backend.server.starts == 0 and not backend.server.running()


def test_label_cli_refuses_a_model_that_is_not_gguf(tiny_project: Path) -> None:
    notes = tiny_project / "notes.txt"
    notes.write_text("hello")
    path = tiny_project / "graduate.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["teacher"].update(kind="local", model=str(notes))
    path.write_text(yaml.safe_dump(raw))
    done = subprocess.run(
        [sys.executable, "-m", "graduate", "label", str(tiny_project), "--input", str(tiny_project / "comments.csv"), "--id-column", "id", "--limit", "3"],
        capture_output=True,
        text=True,
        timeout=120,
        env=cli_env(),
    )
    assert done.returncode == 2
    assert f"error: {notes}: not a GGUF model (starts with b'hell', expected b'GGUF')" in done.stderr
