"""The facade: ``Project.load(path)`` then import, build, train, evaluate, label, predict.

Each method is a thin composition of the pure functions in data/, teacher/, students/ and
evaluate/; ``run`` is the whole distillation path that ``graduate run`` and ``make demo`` use.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import Engine

from graduate.data.build import Dataset, build_training_set
from graduate.data.csv_source import CsvReport, read_items
from graduate.data.examples import add_examples, select_examples
from graduate.data.import_calls import ImportReport, import_log
from graduate.data.teacher_labels import teacher_labels
from graduate.errors import NotReadyError, StudentError
from graduate.evaluate.cost import teacher_cost_per_1k
from graduate.evaluate.evaluation import predict_timed, student_metrics, teacher_metrics
from graduate.evaluate.testsets import load_test_set
from graduate.spec import ProjectSpec, StudentSpec, load_spec
from graduate.store.db import open_engine, resolve_url
from graduate.store.runs import RunRow, code_version, fail_run, fingerprint, finish_run, get_runs, save_predictions, start_run
from graduate.students.base import Student
from graduate.students.registry import load_student, make_student, save_student

# (stage, done, total): library code reports progress, the CLI draws it.
ProgressFn = Callable[[str, int, int | None], None]


def _noop(stage: str, done: int, total: int | None) -> None:
    return None


@dataclass
class TrainResult:
    name: str
    run_id: str
    student: Student
    directory: Path
    fit_seconds: float
    reused: bool


class Project:
    def __init__(self, spec: ProjectSpec, root: Path, engine: Engine):
        self.spec = spec
        self.root = root
        self.engine = engine

    @classmethod
    def load(cls, path: Path | str) -> "Project":
        spec, root = load_spec(path)
        return cls(spec, root, open_engine(resolve_url(spec.store.url, root)))

    @property
    def workdir(self) -> Path:
        d = self.root / ".graduate"
        d.mkdir(parents=True, exist_ok=True)
        return d

    # -- data in ---------------------------------------------------------------------------
    def import_logs(self, progress: ProgressFn = _noop) -> list[ImportReport]:
        reports = []
        for i, log in enumerate(self.spec.teacher_logs):
            progress("import teacher logs", i, len(self.spec.teacher_logs))
            reports.append(import_log(self.engine, log.input, log.output, price_for=self.spec.price_for, fmt=log.format))
        progress("import teacher logs", len(self.spec.teacher_logs), len(self.spec.teacher_logs))
        return reports

    def import_batch(self, input_path: Path, output_path: Path | None, fmt: str = "batch") -> ImportReport:
        return import_log(self.engine, input_path, output_path, price_for=self.spec.price_for, fmt=fmt)

    def load_data(self, progress: ProgressFn = _noop) -> list[tuple[str, int, CsvReport]]:
        out = []
        for i, src in enumerate(self.spec.data):
            progress("load data", i, len(self.spec.data))
            items, report = read_items(
                src.path,
                text_column=src.text_column or self.spec.task.text_column,
                id_column=src.id_column,
                gold_column=src.gold_column,
                gold_values=src.gold_values,
                labels=self.spec.task.labels,
                tags_column=src.tags_column,
                tag_separator=src.tag_separator,
            )
            added = add_examples(self.engine, src.name, items, gold_labeller=f"gold:{src.name}")
            out.append((src.name, added, report))
        progress("load data", len(self.spec.data), len(self.spec.data))
        return out

    # -- students --------------------------------------------------------------------------
    def build_training_set(self) -> Dataset:
        return build_training_set(self.engine, self.spec)

    def train(self, student_spec: StudentSpec, dataset: Dataset) -> TrainResult:
        """Train one student as a tracked run; an identical finished run is reused, not retrained."""
        params = {**student_spec.params}
        fp = fingerprint(student_spec.kind, params, dataset.content_hash, code_version(), self.spec.seed, self.spec.task.labels)
        for prior in reversed(get_runs(self.engine, kind="train", status="finished", fingerprint=fp)):
            directory = Path(prior.artifact_dir or "")
            if (directory / "kind.json").exists():
                return TrainResult(student_spec.label, prior.id, load_student(directory), directory, float((prior.metrics or {}).get("fit_seconds", 0.0)), True)
        resolved = json.loads(self.spec.model_dump_json())
        run_id = start_run(
            self.engine,
            kind="train",
            name=student_spec.label,
            spec=resolved,
            seed=self.spec.seed,
            dataset_hash=dataset.content_hash,
            fingerprint=fp,
        )
        directory = self.workdir / "runs" / run_id / "student"
        try:
            if "seed" in _defaults(student_spec.kind):
                params.setdefault("seed", self.spec.seed)
            student = make_student(student_spec.kind, self.spec.task.labels, params)
            t0 = time.perf_counter()
            student.fit(dataset.texts, dataset.labels, sample_weight=dataset.weights or None)
            fit_seconds = time.perf_counter() - t0
            save_student(student, directory)
            (directory.parent / "run.json").write_text(
                json.dumps(
                    {
                        "run_id": run_id,
                        "student": student_spec.model_dump(),
                        "spec": resolved,
                        "dataset": {"name": dataset.name, "hash": dataset.content_hash, "size": len(dataset.examples), "recipe": dataset.recipe},
                        "code_version": code_version(),
                        "seed": self.spec.seed,
                        "fit_seconds": fit_seconds,
                    },
                    indent=2,
                    default=str,
                )
            )
        except BaseException as exc:
            fail_run(self.engine, run_id, f"{type(exc).__name__}: {exc}")
            raise
        finish_run(self.engine, run_id, metrics={"fit_seconds": fit_seconds, "train_size": len(dataset.examples)}, artifact_dir=str(directory))
        return TrainResult(student_spec.label, run_id, student, directory, fit_seconds, False)

    def best_student(self) -> tuple[Student, RunRow]:
        """The student with the best selection score from the last evaluation (ties: the newest)."""
        candidates = [
            r for r in get_runs(self.engine, kind="train", status="finished") if (r.metrics or {}).get("selection_score") is not None
        ]
        candidates = [r for r in candidates if r.artifact_dir and (Path(r.artifact_dir) / "kind.json").exists()]
        if not candidates:
            raise NotReadyError(f"no trained student yet; run `graduate run {self.root}` first")
        best = max(candidates, key=lambda r: (r.metrics["selection_score"], r.started_at))  # type: ignore[index]
        return load_student(Path(best.artifact_dir)), best  # type: ignore[arg-type]

    # -- the whole path ----------------------------------------------------------------------
    def run(self, progress: ProgressFn = _noop) -> dict[str, Any]:
        """Import logs and data, build the training set, train every student, evaluate on every
        test set; returns the summary (also written to .graduate/summary.json)."""
        from graduate.store.runs import update_metrics

        t_start = time.perf_counter()
        timings: dict[str, float] = {}

        t = time.perf_counter()
        imports = self.import_logs(progress)
        timings["import_logs_s"] = time.perf_counter() - t
        t = time.perf_counter()
        loaded = self.load_data(progress)
        timings["load_data_s"] = time.perf_counter() - t

        if not self.spec.test_sets:
            raise NotReadyError("graduate.yaml declares no test_sets; add at least one to evaluate against gold")
        tests = [load_test_set(self.engine, sel) for sel in self.spec.test_sets]

        t = time.perf_counter()
        progress("build training set", 0, 1)
        dataset = self.build_training_set()
        progress("build training set", 1, 1)
        timings["build_s"] = time.perf_counter() - t

        trained: list[TrainResult] = []
        t = time.perf_counter()
        for i, sspec in enumerate(self.spec.students):
            progress(f"train {sspec.label}", i, len(self.spec.students))
            trained.append(self.train(sspec, dataset))
        progress("train students", len(self.spec.students), len(self.spec.students))
        timings["train_s"] = time.perf_counter() - t

        t = time.perf_counter()
        eval_run = start_run(
            self.engine,
            kind="evaluate",
            name="run",
            spec=json.loads(self.spec.model_dump_json()),
            seed=self.spec.seed,
            dataset_hash=dataset.content_hash,
        )
        per_test: dict[str, Any] = {}
        teacher_calls_used = []
        scores: dict[str, list[float]] = {tr.name: [] for tr in trained}
        for test in tests:
            progress(f"evaluate {test.name}", 0, 1)
            answers = teacher_labels(self.engine, self.spec.task, self.spec.teacher, test.examples)
            teacher_calls_used += [a.call for a in answers.values() if a.call is not None]
            entry: dict[str, Any] = {
                "n": len(test.examples),
                "content_hash": test.content_hash,
                "label_counts": {lab: test.gold.count(lab) for lab in self.spec.task.labels},
                "teacher": teacher_metrics(self.spec.task, test, answers),
                "students": {},
            }
            texts = [ex.text for ex in test.examples]
            save_predictions(
                self.engine,
                eval_run,
                [
                    {"example_id": ex.id, "test_set": test.name, "predictor": self.spec.teacher.labeller, "label": answers[ex.id].label}
                    for ex in test.examples
                    if answers[ex.id].call is not None
                ],
            )
            for tr in trained:
                preds = predict_timed(tr.student, texts)
                save_predictions(
                    self.engine,
                    eval_run,
                    [
                        {
                            "example_id": ex.id,
                            "test_set": test.name,
                            "predictor": f"student:{tr.name}:{tr.run_id}",
                            "label": lab,
                            "probs": dict(zip(tr.student.labels, map(float, p))),
                        }
                        for ex, lab, p in zip(test.examples, preds.labels, preds.probs)
                    ],
                )
                entry["students"][tr.name] = student_metrics(
                    self.spec.task, test, preds, answers, self.spec.serving.cpu_core_hour_usd
                )
                scores[tr.name].append(entry["students"][tr.name]["accuracy"])
            per_test[test.name] = entry
            progress(f"evaluate {test.name}", 1, 1)
        timings["evaluate_s"] = time.perf_counter() - t

        teacher_cost = teacher_cost_per_1k(teacher_calls_used)
        for tr in trained:
            selection = sum(scores[tr.name]) / len(scores[tr.name])
            run = next(r for r in get_runs(self.engine, kind="train") if r.id == tr.run_id)
            update_metrics(self.engine, tr.run_id, {**(run.metrics or {}), "selection_score": selection, "test": {k: v["students"][tr.name] for k, v in per_test.items()}})
        best = max(trained, key=lambda tr: sum(scores[tr.name])) if trained else None
        timings["total_s"] = time.perf_counter() - t_start

        summary = {
            "project": self.spec.task.name,
            "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "code_version": code_version(),
            "teacher": {
                "labeller": self.spec.teacher.labeller,
                "model": self.spec.teacher.model,
                "cost_per_1k_usd": teacher_cost.per_1k_usd,
                "cost_estimated": teacher_cost.estimated,
                "cost_basis": teacher_cost.basis,
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
                }
                for r in imports
            ],
            "data": [{"source": name, "rows": rep.rows, "added": added, "skipped": rep.skipped[:20], "skipped_count": len(rep.skipped)} for name, added, rep in loaded],
            "dataset": {
                "id": dataset.id,
                "size": len(dataset.examples),
                "content_hash": dataset.content_hash,
                "label_counts": dataset.label_counts,
                "recipe": dataset.recipe,
            },
            "unparseable_teacher_answers": {
                "train_pool": next(s["dropped"] for s in dataset.recipe["steps"] if s["step"] == "parse"),
                **{name: e["teacher"]["unparseable"] for name, e in per_test.items()},
            },
            "students": {
                tr.name: {
                    "kind": tr.student.kind,
                    "run_id": tr.run_id,
                    "fit_seconds": tr.fit_seconds,
                    "reused": tr.reused,
                    "artifact_dir": str(tr.directory),
                }
                for tr in trained
            },
            "best_student": best.name if best else None,
            "test_sets": per_test,
            "timings": timings,
        }
        summary["evaluation_run_id"] = eval_run
        finish_run(self.engine, eval_run, metrics={"test_sets": per_test, "best_student": summary["best_student"]})
        (self.workdir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
        return summary

    # -- use ---------------------------------------------------------------------------------
    def label(self, texts: list[str], *, progress: Callable[[int], None] | None = None, backend: Any = None):
        """Send texts to the live teacher (cached, limited, budgeted); store calls and labels."""
        from graduate.teacher.labeling import label_texts
        from graduate.teacher.registry import make_teacher

        backend = backend or make_teacher(self.spec.teacher)
        return asyncio.run(
            label_texts(
                self.engine,
                self.spec.teacher,
                backend,
                texts,
                price=self.spec.price_for(self.spec.teacher.model),
                progress=progress,
            )
        )


def _defaults(kind: str) -> dict[str, Any]:
    from graduate.students.registry import student_class

    try:
        return dict(getattr(student_class(kind), "DEFAULTS", {}))
    except StudentError:
        return {}
