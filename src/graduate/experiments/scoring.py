"""Score trained students on the spec's test sets inside one evaluate run (predictions stored),
and record each student's figures on its train run so `graduate predict` can pick the best."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graduate.evaluate.cost import teacher_cost
from graduate.evaluate.evaluation import score_test_set
from graduate.evaluate.testsets import TestSet
from graduate.store.runs import fail_run, finish_run, get_runs, start_run, update_metrics
from graduate.students.base import Student

if TYPE_CHECKING:
    from graduate.project import Project


@dataclass
class Scoreboard:
    """One evaluate run: per test set the teacher's and each scored student's figures."""

    run_id: str
    tests: list[TestSet]
    quality_sets: list[str]
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    teacher_cost_per_1k: float | None = None
    teacher_cost_estimated: bool = False
    _calls: list[Any] = field(default_factory=list)
    _costed: set[str] = field(default_factory=set)


def open_scoreboard(project: "Project", name: str, dataset_hash: str | None) -> Scoreboard:
    spec = project.spec
    if not spec.test_sets:
        from graduate.errors import NotReadyError

        raise NotReadyError("graduate.yaml declares no test_sets; add at least one to evaluate against gold")
    # Frozen like every other path: a changed test set is refused until its version is raised.
    tests = project.load_test_sets()
    quality = [t.name for t in spec.test_sets if getattr(t, "purpose", "quality") == "quality"]
    run_id = start_run(
        project.engine, kind="evaluate", name=name, spec=json.loads(spec.model_dump_json()), seed=spec.seed, dataset_hash=dataset_hash
    )
    return Scoreboard(run_id, tests, quality)


def score(project: "Project", board: Scoreboard, name: str, train_run_id: str, student: Student) -> dict[str, dict[str, Any]]:
    """Score one student on every test set; returns {test set: metrics} and records them on its run."""
    out: dict[str, dict[str, Any]] = {}
    for test in board.tests:
        entry, calls = score_test_set(project.engine, project.spec, board.run_id, test, [(name, train_run_id, student)])
        known = board.entries.setdefault(test.name, {**{k: v for k, v in entry.items() if k != "students"}, "students": {}})
        known["students"][name] = entry["students"][name]
        out[test.name] = entry["students"][name]
        if test.name not in board._costed:  # the teacher's answers are the same for every student
            board._costed.add(test.name)
            board._calls += calls
    cost = teacher_cost(project.spec, board._calls)
    board.teacher_cost_per_1k, board.teacher_cost_estimated = cost.per_1k_usd, cost.estimated
    quality = [out[t]["accuracy"] for t in board.quality_sets if t in out] or [m["accuracy"] for m in out.values()]
    run = next(r for r in get_runs(project.engine, root=project.root, kind="train") if r.id == train_run_id)
    update_metrics(project.engine, train_run_id, {**(run.metrics or {}), "selection_score": sum(quality) / len(quality), "test": out})
    return out


def close_scoreboard(project: "Project", board: Scoreboard, extra: dict[str, Any] | None = None) -> None:
    finish_run(project.engine, board.run_id, metrics={"test_sets": board.entries, **(extra or {})})


def fail_scoreboard(project: "Project", board: Scoreboard, exc: BaseException) -> None:
    """A crashed (or interrupted) ladder or curve leaves its evaluate run failed, never "running"."""
    fail_run(project.engine, board.run_id, f"{type(exc).__name__}: {exc}"[:2000])
