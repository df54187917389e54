"""Step 6, report: the error analysis of the newest evaluation and the one-file HTML report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graduate.errors import NotReadyError
from graduate.evaluate.error_analysis import ErrorAnalysis, analyse_errors
from graduate.evaluate.testsets import load_test_set

from graduate.pipeline.assess import latest_assessment

if TYPE_CHECKING:
    from graduate.pipeline.project import Project


def error_analysis(
    project: "Project", *, student: str | None = None, test_sets: list[str] | None = None, assessment: dict[str, Any] | None = None
) -> ErrorAnalysis:
    """Group the newest evaluation's test items by who was right (graduate.evaluate.error_analysis).
    Default test sets: the quality ones; ``test_sets`` may name any evaluated set."""
    assessment = assessment or latest_assessment(project)
    known = {t.name: t for t in project.spec.test_sets}
    names = test_sets or [n for n, t in assessment["test_sets"].items() if t.get("purpose", "quality") == "quality"]
    unknown = [n for n in names if n not in known or n not in assessment["test_sets"]]
    if unknown:
        raise NotReadyError(f"test sets {unknown} were not evaluated; evaluated: {sorted(assessment['test_sets'])}")
    tests = [load_test_set(project.engine, known[n]) for n in names]
    for test in tests:  # the stored predictions pair only with the items and gold they were scored on
        was = assessment["test_sets"][test.name].get("content_hash")
        if was is not None and was != test.content_hash:
            raise NotReadyError(
                f"test set {test.name!r} changed since the newest evaluation (hash {was[:12]} -> {test.content_hash[:12]}), so who was right "
                f"there is no longer known; evaluate again: `graduate evaluate {project.root}` (with a new test_sets[].version if the change is meant)"
            )
    return analyse_errors(project.engine, project.spec, assessment, tests, student=student)


def write_html_report(
    project: "Project", path: Path | None = None, *, assessment: dict[str, Any] | None = None, summary: dict[str, Any] | None = None
) -> Path:
    """Write the one-file HTML report (default .graduate/report.html) of ``assessment`` and
    ``summary`` (``graduate run`` passes its own), else of the newest evaluation and summary.json."""
    from graduate.evaluate.report import write_report

    assessment = assessment or latest_assessment(project)
    if summary is None:
        summary_path = project.workdir / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    errors = error_analysis(project, assessment=assessment)
    return write_report(
        path or project.workdir / "report.html", spec=project.spec, root=project.root, engine=project.engine, assessment=assessment, summary=summary, errors=errors
    )
