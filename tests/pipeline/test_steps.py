"""The pipeline's steps compose into `graduate run`, and each gives a typed result: the scoreboard
predicts each student once, stores exactly what it assesses, and the assessment from its arrays
equals one made from the stored rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from graduate.data.build import Dataset
from graduate.errors import SpecError
from graduate.evaluate.assessment import assess, load_predictions
from graduate.pipeline import run as run_step
from graduate.pipeline.ingest import Ingested
from graduate.pipeline.project import Project
from graduate.pipeline.scoring import Scoreboard
from graduate.pipeline.train import TrainResult
from graduate.pipeline.validate import parse_checked_spec
from graduate.store.runs import get_runs


def test_run_composes_typed_steps_and_assesses_what_it_stored(tiny_project: Path) -> None:
    proj = Project.load(tiny_project)
    result = run_step.run(proj)
    assert isinstance(result.ingested, Ingested) and isinstance(result.dataset, Dataset) and isinstance(result.board, Scoreboard)
    assert all(isinstance(t, TrainResult) for t in result.trained) and [t.name for t in result.trained] == [s.label for s in proj.spec.students]
    board = result.board

    # one row per (test set, predictor, item), as stored: the same labels and probabilities
    stored = load_predictions(proj.engine, board.run_id)
    assert {k: dict(v) for k, v in stored.items()} == {k: dict(v) for k, v in board.predictions.items()}
    students = {s.label for s in proj.spec.students}
    assert {who for _, who in board.predictions} == {proj.spec.teacher.labeller} | {f"student:{t.name}:{t.run_id}" for t in result.trained}
    assert len(board.students) == len(students)

    # the assessment from the scoreboard's arrays is the one the stored rows give (latency aside)
    again = assess(
        proj.engine, proj.spec, run_id=board.run_id, tests=board.tests, students=board.students, entries=board.entries,
        teacher_cost=board.teacher_cost, best_student=result.summary["best_student"], dataset=result.summary["dataset"], predictions=stored,
    )
    for name, ts in result.assessment["test_sets"].items():
        assert again["test_sets"][name] == ts
    assert again["bias"] == result.assessment["bias"]

    # the evaluate run is finished, and each student's test figures are recorded on its run, its
    # validation score (what picks) as the scoreboard read it
    ev = next(r for r in get_runs(proj.engine, kind="evaluate") if r.id == board.run_id)
    assert ev.status == "finished" and ev.metrics["best_student"] == result.summary["best_student"]
    for t in result.trained:
        run = next(r for r in get_runs(proj.engine, kind="train") if r.id == t.run_id)
        assert run.metrics["test"] == {ts: board.entries[ts]["students"][t.name] for ts in board.entries}
        assert run.metrics.get("validation") == board.validation[t.name]


def test_student_kinds_and_params_are_checked_by_the_pipelines_validation(tiny_project: Path) -> None:
    import yaml

    raw = yaml.safe_load((tiny_project / "graduate.yaml").read_text())
    raw["students"] = [{"kind": "nope"}, {"kind": "tfidf-logreg", "params": {"C": -1}}]
    with pytest.raises(SpecError) as err:
        parse_checked_spec(raw, path="graduate.yaml")
    lines = str(err.value).splitlines()
    assert len(lines) == 2 and "students[0].kind: unknown student kind 'nope'" in lines[0] and "students[1] (tfidf-logreg): " in lines[1]
    (tiny_project / "graduate.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(SpecError, match="unknown student kind 'nope'"):
        Project.load(tiny_project)  # every command loads through the check
