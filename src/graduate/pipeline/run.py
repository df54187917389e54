"""The whole path, composed of the steps: ``run`` (ingest -> build -> train -> score -> assess ->
report; what ``graduate run`` and ``make demo`` do) and ``evaluate`` (score -> assess of the
students already trained; imports and trains nothing)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graduate.data.build import Dataset, save_dataset
from graduate.data.validation import carve_validation
from graduate.evaluate.assessment import artifact_bytes
from graduate.store.runs import code_version

from graduate.pipeline.assess import assess_board, check_test_sets, load_test_sets
from graduate.pipeline.build import build
from graduate.pipeline.ingest import Ingested, import_logs, load_data, load_label_imports, load_reviews
from graduate.pipeline.progress import ProgressFn, no_progress
from graduate.pipeline.report import write_html_report
from graduate.pipeline.scoring import Scoreboard, evaluation_run
from graduate.pipeline.select import trained_students
from graduate.pipeline.train import TrainResult, train

if TYPE_CHECKING:
    from graduate.pipeline.project import Project


@dataclass
class RunResult:
    """What ``graduate run`` did; ``summary`` is what it wrote to .graduate/summary.json."""

    ingested: Ingested
    dataset: Dataset
    trained: list[TrainResult]
    board: Scoreboard
    assessment: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


def run(project: "Project", progress: ProgressFn = no_progress) -> RunResult:
    """Import logs and data, build the training set, train every student, evaluate on every test
    set, assess, write summary.json and the report."""
    spec = project.spec
    check_test_sets(project)
    t_start = time.perf_counter()
    timings: dict[str, float] = {}

    t = time.perf_counter()
    imports = import_logs(project, progress)
    timings["import_logs_s"] = time.perf_counter() - t
    t = time.perf_counter()
    ingested = Ingested(imports, load_data(project, progress), load_label_imports(project, progress), load_reviews(project, progress))
    timings["load_data_s"] = time.perf_counter() - t
    load_test_sets(project)  # refuse a changed frozen test set before training anything
    augmented = None
    if spec.augment.in_run:
        t = time.perf_counter()
        progress("augment: counterfactual copies", 0, 1)
        augmented = project.augment()
        progress("augment: counterfactual copies", 1, 1)
        timings["augment_s"] = time.perf_counter() - t

    t = time.perf_counter()
    progress("build training set", 0, 1)
    dataset = build(project)
    split = carve_validation(project.engine, spec, dataset)
    if split.validation is not None:
        split.train.id = save_dataset(project.engine, split.train)
    progress("build training set", 1, 1)
    timings["build_s"] = time.perf_counter() - t

    trained: list[TrainResult] = []
    t = time.perf_counter()
    for i, sspec in enumerate(spec.students):
        progress(f"train {sspec.label}", i, len(spec.students))
        trained.append(train(project, sspec, split.train, progress=progress))
    progress("train students", len(spec.students), len(spec.students))
    timings["train_s"] = time.perf_counter() - t

    t = time.perf_counter()
    with evaluation_run(project, "run", dataset.content_hash) as board:
        for tr in trained:
            board.add(tr.name, tr.run_id, tr.student, progress=progress, validation=split.validation)
        timings["evaluate_s"] = time.perf_counter() - t
        best = board.best()
        timings["total_s"] = time.perf_counter() - t_start
        summary = _summary(project, ingested, dataset, trained, board, best, timings)
        summary["model_selection"] = {**board.selection(), "split": split.report}
        if augmented is not None:
            summary["augment"] = {
                "method": augmented.method,
                "items_naming_a_term": augmented.matching,
                "added": augmented.added,
                "already_stored": augmented.already_stored,
                "added_per_term": augmented.per_term,
            }
        board.close({"best_student": best, "model_selection": summary["model_selection"]})
        t = time.perf_counter()
        info = {tr.name: {"fit_seconds": tr.fit_seconds, "train_size": len(split.train.examples), "artifact_bytes": artifact_bytes(tr.directory)} for tr in trained}
        assessment = assess_board(project, board, best=best, dataset=summary["dataset"], info=info, progress=progress)
    summary["gates"] = assessment["gates"]
    summary["gates_passed"] = assessment["gates_passed"]
    summary["evaluation"] = str(project.workdir / "evaluation.json")
    summary["report"] = str(project.workdir / "report.html")
    timings["assess_s"] = time.perf_counter() - t
    _carry_label_quality(project.workdir, summary)
    (project.workdir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    write_html_report(project, assessment=assessment, summary=json.loads(json.dumps(summary, default=str)))
    return RunResult(ingested, dataset, trained, board, assessment, timings, summary)


def evaluate(project: "Project", progress: ProgressFn = no_progress) -> dict[str, Any]:
    """Evaluate the trained students (from the store) and the teacher on every test set and judge
    the gates, as a new evaluation run; returns the assessment (also written to
    .graduate/evaluation.json). Imports and trains nothing."""
    check_test_sets(project)
    students = trained_students(project)
    with evaluation_run(project, "evaluate") as board:
        for name, (student, run) in students.items():
            board.add(name, run.id, student, progress=progress)
        best = board.best()
        dataset = None
        first = next(iter(students.values()))[1] if students else None
        if first is not None and first.artifact_dir:
            record = Path(first.artifact_dir).parent / "run.json"
            if record.exists():
                dataset = json.loads(record.read_text()).get("dataset")
        info = {
            n: {"fit_seconds": (r.metrics or {}).get("fit_seconds"), "train_size": (r.metrics or {}).get("train_size"), "artifact_bytes": artifact_bytes(r.artifact_dir)}
            for n, (_, r) in students.items()
        }
        board.close({"best_student": best, "model_selection": board.selection()})
        return assess_board(project, board, best=best, dataset=dataset, info=info, progress=progress)


def _summary(
    project: "Project", ingested: Ingested, dataset: Dataset, trained: list[TrainResult], board: Scoreboard, best: str | None, timings: dict[str, float]
) -> dict[str, Any]:
    spec = project.spec
    cost = board.teacher_cost
    return {
        "project": spec.task.name,
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "code_version": code_version(),
        "teacher": {
            "labeller": spec.teacher.labeller,
            "model": spec.teacher.model,
            "cost_per_1k_usd": cost.per_1k_usd,
            "cost_estimated": cost.estimated,
            "cost_basis": cost.basis,
        },
        "imports": [
            {
                "path": r.path,
                "already_imported": r.already_imported,
                "read": r.read,
                "added": r.added,
                "skipped_existing": r.skipped_existing,
                "failed_calls": r.failed_calls,
                "bad_lines": r.problems[:20],
                "bad_lines_count": len(r.problems),
                "forgotten": r.forgotten,
            }
            for r in ingested.imports
        ],
        "data": [
            {"source": s.name, "file": Path(s.report.path).name, "rows": s.report.rows, "added": s.added, "skipped": s.report.skipped[:20], "skipped_count": len(s.report.skipped), "absent": s.absent, "back": s.back, "listed": s.listed, "reviews_carried": s.reviews_carried}
            for s in ingested.loaded
        ],
        "dataset": {
            "id": dataset.id,
            "size": len(dataset.examples),
            "content_hash": dataset.content_hash,
            "label_counts": dataset.label_counts,
            "recipe": dataset.recipe,
        },
        "unparseable_teacher_answers": {
            "train_pool": next(s["dropped"] for s in dataset.recipe["steps"] if s["step"] == "parse"),
            **{name: e["teacher"]["unparseable"] for name, e in board.entries.items()},
        },
        "students": {
            tr.name: {"kind": tr.student.kind, "run_id": tr.run_id, "fit_seconds": tr.fit_seconds, "reused": tr.reused, "artifact_dir": str(tr.directory)}
            for tr in trained
        },
        **(
            {"label_imports": [{"path": r.path, "rows": r.rows, "added": r.added, "changed": r.changed, "removed": r.removed, "skipped": r.skipped[:20], "skipped_count": len(r.skipped), "not_in_file": r.not_in_file} for r in ingested.label_imports]}
            if ingested.label_imports
            else {}
        ),
        **(
            {
                "reviews": [
                    {
                        "path": r.path, "rows": r.rows, "added": r.added, "changed": r.changed, "unchanged": r.unchanged,
                        "skipped": r.skipped[:20], "skipped_count": len(r.skipped),
                    }
                    for r in ingested.reviews
                ]
            }
            if ingested.reviews
            else {}
        ),
        "best_student": best,
        "test_sets": board.entries,
        "timings": timings,
        "evaluation_run_id": board.run_id,
    }


def _carry_label_quality(workdir: Path, summary: dict[str, Any]) -> None:
    """Keep the label-quality comparison (`graduate data compare`) and the newest teacher audit's
    recommendation in summary.json: `graduate run` rewrites the file, these come from other commands."""
    old = workdir / "summary.json"
    if old.exists():
        try:
            previous = json.loads(old.read_text())
        except ValueError:
            previous = {}
        if previous.get("label_quality"):
            summary["label_quality"] = previous["label_quality"]
    audit = workdir / "audit.json"
    if audit.exists():
        try:
            a = json.loads(audit.read_text())
        except ValueError:
            return
        summary["teacher_audit"] = {"audit_id": a.get("audit_id"), "generated_at": a.get("generated_at"), "recommended": a.get("recommended"), "path": str(audit)}
