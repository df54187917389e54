"""Issue 17, item 1 (and issue 13): any crash in an evaluation, from `graduate evaluate` or `graduate
run`, ends with one line and the run marked failed. A
real crash: the encoder's served ONNX model is corrupted on disk after training, so it loads
(the file is read) and fails only when the evaluation predicts with it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from graduate.pipeline.project import Project
from graduate.store.runs import get_runs

FAST = {"max_steps": 2, "max_length": 32, "batch_size": 16, "agreement_items": 16, "save_float": False}


def graduate(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("GRADUATE_STORE_URL", "GRADUATE_DEBUG")}
    return subprocess.run([sys.executable, "-m", "graduate", *args], capture_output=True, text=True, timeout=600, env={**env, "COLUMNS": "200"})


def test_a_crash_during_evaluation_is_one_line_and_marks_the_run_failed(tiny_project: Path, tiny_encoder: Path) -> None:
    spec = yaml.safe_load((tiny_project / "graduate.yaml").read_text())
    spec["students"] = [{"kind": "majority"}, {"kind": "encoder", "params": {**FAST, "base_model": str(tiny_encoder)}}]
    (tiny_project / "graduate.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    first = graduate("run", str(tiny_project))
    assert first.returncode == 0, first.stderr[-2000:]

    proj = Project.load(tiny_project)
    encoder = next(r for r in get_runs(proj.engine, kind="train", status="finished", root=proj.root) if r.name == "encoder")
    (Path(encoder.artifact_dir) / "model.onnx").write_bytes(b"not an onnx model")

    res = graduate("evaluate", str(tiny_project))
    assert res.returncode == 70, res.stdout[-1000:] + res.stderr[-2000:]
    lines = [line for line in res.stderr.splitlines() if line.startswith("error:") or "Traceback" in line]
    assert len(lines) == 1 and lines[0].startswith("error: internal error") and "GRADUATE_DEBUG=1" in lines[0], res.stderr[-2000:]

    runs = get_runs(Project.load(tiny_project).engine)
    assert all(r.status in ("finished", "failed") for r in runs), [(r.kind, r.name, r.status) for r in runs]
    evals = [r for r in runs if r.kind == "evaluate"]
    assert [r.status for r in evals] == ["finished", "failed"]  # the first run's evaluation is kept
    assert sum(r.kind == "train" and r.status == "finished" for r in runs) == 2  # nothing stored was lost

    # `graduate run` reuses both trained students (identical fingerprints) and crashes in the
    # same evaluation step: its evaluate run is failed too, and the summary is not rewritten.
    summary = tiny_project / ".graduate" / "summary.json"
    before = summary.read_text()
    again = graduate("run", str(tiny_project))
    assert again.returncode == 70, again.stdout[-1000:] + again.stderr[-2000:]
    evals = [r for r in get_runs(Project.load(tiny_project).engine) if r.kind == "evaluate"]
    assert [r.status for r in evals] == ["finished", "failed", "failed"] and evals[-1].name == "run"
    assert summary.read_text() == before
