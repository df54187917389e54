"""Step 5, assess: the test sets (checked, frozen) and the assessment of a scoreboard (every
metric, slice, bias figure, latency, cost and gate), stored with its run and written to
``.graduate/evaluation.json``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from graduate.errors import NotReadyError
from graduate.evaluate.assessment import assess
from graduate.evaluate.frozen import freeze_test_set
from graduate.evaluate.testsets import TestSet, check_test_set_gold, load_test_set
from graduate.spec import SPEC_FILENAME
from graduate.store.runs import get_runs, update_metrics

from graduate.pipeline.progress import ProgressFn, no_progress

if TYPE_CHECKING:
    from graduate.pipeline.project import Project
    from graduate.pipeline.scoring import Scoreboard


def check_test_sets(project: "Project") -> None:
    """Before any work: every file and column the spec names exists, and every gold value of
    every test set is a task label (SpecError, listing every problem)."""
    from graduate.data.inputs import check_inputs

    check_inputs(project.spec, project.root / SPEC_FILENAME)
    check_test_set_gold(project.spec, project.root / SPEC_FILENAME)


def load_test_sets(project: "Project") -> list[TestSet]:
    """The spec's test sets from the store, each checked against its frozen version: a set whose
    items or gold labels changed is refused (TestSetChangedError) until its version is raised."""
    if not project.spec.test_sets:
        raise NotReadyError("graduate.yaml declares no test_sets; add at least one to evaluate against gold")
    tests = []
    for sel in project.spec.test_sets:
        test = load_test_set(project.engine, sel)
        freeze_test_set(project.engine, test, sel.version)
        tests.append(test)
    return tests


def assess_board(
    project: "Project",
    board: "Scoreboard",
    *,
    best: str | None,
    dataset: dict[str, Any] | None,
    info: dict[str, dict[str, Any]],
    progress: ProgressFn = no_progress,
) -> dict[str, Any]:
    """Assess a closed scoreboard from its in-memory predictions; store and write the result."""
    calls = board.calls
    assessment = assess(
        project.engine,
        project.spec,
        run_id=board.run_id,
        tests=board.tests,
        students=board.students,
        entries=board.entries,
        teacher_cost=board.teacher_cost,
        teacher_latencies_ms=[c.latency_ms for c in calls if c.source == "live"],
        best_student=best,
        dataset=dataset,
        student_info=info,
        progress=progress,
        predictions=board.predictions,
    )
    assessment["model_selection"] = board.selection()
    update_metrics(project.engine, board.run_id, {"test_sets": board.entries, "best_student": best, "assessment": assessment})
    (project.workdir / "evaluation.json").write_text(json.dumps(assessment, indent=2, default=str))
    return assessment


def latest_assessment(project: "Project") -> dict[str, Any]:
    """The assessment of the newest finished evaluation run."""
    for run in reversed(get_runs(project.engine, root=project.root, kind="evaluate", status="finished")):
        if (run.metrics or {}).get("assessment"):
            return run.metrics["assessment"]  # type: ignore[index]
    raise NotReadyError(f"nothing evaluated yet; run `graduate run {project.root}` (or `graduate evaluate {project.root}`) first")
