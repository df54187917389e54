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
from graduate.data.examples import add_examples
from graduate.data.import_calls import ImportReport, import_log
from graduate.errors import NotReadyError, StudentError
from graduate.evaluate.assessment import artifact_bytes
from graduate.evaluate.cost import teacher_cost as cost_of_teacher
from graduate.evaluate.evaluation import score_test_set
from graduate.evaluate.testsets import TestSet, check_test_set_gold, load_test_set
from graduate.spec import SPEC_FILENAME, ProjectSpec, StudentSpec, load_spec
from graduate.store.db import open_engine, resolve_url
from graduate.store.runs import RunRow, code_version, fail_run, fingerprint, finish_run, get_runs, relative_artifact_dir, start_run
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
                group_column=src.group_column,
            )
            added = add_examples(self.engine, src.name, items, gold_labeller=f"gold:{src.name}")
            out.append((src.name, added, report))
        progress("load data", len(self.spec.data), len(self.spec.data))
        return out

    # -- students --------------------------------------------------------------------------
    def build_training_set(self) -> Dataset:
        return build_training_set(self.engine, self.spec)

    def train(self, student_spec: StudentSpec, dataset: Dataset, *, seed: int | None = None, progress: ProgressFn = _noop) -> TrainResult:
        """Train one student as a tracked run; an identical finished run is reused, not retrained.

        ``seed`` overrides the spec's (learning curves train several); ``progress`` gets the
        optimisation steps of students that report them (encoder, lora-llm)."""
        seed = self.spec.seed if seed is None else seed
        params = {**_spec_defaults(student_spec.kind, self.spec), **student_spec.params}
        cls = _student_cls(student_spec.kind)
        soft = dataset.soft_labels if cls.soft_labels else None
        # The teacher's reasons, for students that learn them (lora-llm with rationale_weight > 0).
        reasons = dataset.rationales if cls.wants_rationales(params) else None
        fp = fingerprint(
            student_spec.kind, params, dataset.content_hash, code_version(), seed, self.spec.task.labels, soft is not None,
            *([reasons] if reasons is not None else []),
        )
        for prior in reversed(get_runs(self.engine, root=self.root, kind="train", status="finished", fingerprint=fp)):
            directory = Path(prior.artifact_dir or "")
            if (directory / "kind.json").exists():
                return TrainResult(student_spec.label, prior.id, load_student(directory), directory, float((prior.metrics or {}).get("fit_seconds", 0.0)), True)
        resolved = json.loads(self.spec.model_dump_json())
        run_id = start_run(
            self.engine,
            kind="train",
            name=student_spec.label,
            spec=resolved,
            seed=seed,
            dataset_hash=dataset.content_hash,
            fingerprint=fp,
        )
        directory = self.workdir / "runs" / run_id / "student"
        try:
            if "seed" in _defaults(student_spec.kind):
                params.setdefault("seed", seed)
            members: list[dict[str, Any]] | None = None
            if cls.is_ensemble:  # each member is its own (reusable) run
                student, fit_seconds, members = self._train_members(cls, student_spec, params, dataset, seed, progress)
            else:
                student = make_student(student_spec.kind, self.spec.task.labels, params)
                # Every kind takes the callback; the ones that train in steps call it.
                student.on_progress = lambda done, total: progress(f"train {student_spec.label}", done, total)
                extra: dict[str, Any] = {"soft_labels": _soft_matrix(soft, self.spec.task.labels)} if soft is not None else {}
                if reasons is not None:
                    extra["rationales"] = reasons
                t0 = time.perf_counter()
                student.fit(dataset.texts, dataset.labels, sample_weight=dataset.weights or None, **extra)
                fit_seconds = time.perf_counter() - t0
            save_student(student, directory)
            size_bytes = sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())
            (directory.parent / "run.json").write_text(
                json.dumps(
                    {
                        "run_id": run_id,
                        "student": student_spec.model_dump(),
                        "spec": resolved,
                        "dataset": {"name": dataset.name, "hash": dataset.content_hash, "size": len(dataset.examples), "recipe": dataset.recipe},
                        "code_version": code_version(),
                        "seed": seed,
                        "params": params,
                        "soft_labels": soft is not None,
                        "rationales": sum(r is not None for r in reasons) if reasons is not None else 0,
                        "fit_seconds": fit_seconds,
                        "size_bytes": size_bytes,
                        **({"members": members} if members is not None else {}),
                    },
                    indent=2,
                    default=str,
                )
            )
        except BaseException as exc:
            fail_run(self.engine, run_id, f"{type(exc).__name__}: {exc}")
            raise
        finish_run(
            self.engine,
            run_id,
            metrics={"fit_seconds": fit_seconds, "train_size": len(dataset.examples), "size_bytes": size_bytes, "kind": student_spec.kind, "params": params},
            artifact_dir=relative_artifact_dir(directory, self.root),
        )
        return TrainResult(student_spec.label, run_id, student, directory, fit_seconds, False)

    def _train_members(
        self, cls: type, student_spec: StudentSpec, params: dict[str, Any], dataset: Dataset, seed: int, progress: ProgressFn
    ) -> tuple[Student, float, list[dict[str, Any]]]:
        """Train (or reuse) each member of an ensemble as its own run, then assemble them. The
        ensemble's training time is its members' (a reused member counts what it took then)."""
        results = []
        for i, m in enumerate(cls.member_specs(params)):  # type: ignore[attr-defined]
            member_data = dataset if m["use_weights"] else dataset.without_weights()
            member = StudentSpec(kind=m["kind"], name=f"{student_spec.label}.{i}.{m['kind']}", params=m["params"])
            results.append(self.train(member, member_data, seed=params.get("seed", seed), progress=progress))
        student = cls.from_members(self.spec.task.labels, params, [r.student for r in results])  # type: ignore[attr-defined]
        runs = [{"run_id": r.run_id, "kind": r.student.kind, "reused": r.reused, "fit_seconds": r.fit_seconds} for r in results]
        return student, sum(r.fit_seconds for r in results), runs

    def best_student(self) -> tuple[Student, RunRow]:
        """The best of graduate.yaml's students: for each, its newest evaluated run, and of those
        the highest selection score (mean accuracy over the quality test sets; ties: the newest).
        Learning-curve shares, ensemble members and ladder rungs the spec does not list never
        compete (a lucky 75% share would otherwise win)."""
        names = {s.label for s in self.spec.students}
        evaluated = [
            r
            for r in get_runs(self.engine, root=self.root, kind="train", status="finished")
            if (r.metrics or {}).get("selection_score") is not None and r.artifact_dir and (Path(r.artifact_dir) / "kind.json").exists()
        ]
        newest: dict[str, RunRow] = {}
        for r in evaluated:  # in start order: the last one per name wins
            if r.name in names:
                newest[r.name] = r
        if not newest:
            others = sorted({r.name for r in evaluated if r.name not in names})
            hint = f"; trained outside students: {others} (add one to students: in graduate.yaml to use it)" if others else ""
            raise NotReadyError(f"no trained student of graduate.yaml's students {sorted(names)}; run `graduate run {self.root}` first{hint}")
        best = max(newest.values(), key=lambda r: (r.metrics["selection_score"], r.started_at))  # type: ignore[index]
        return load_student(Path(best.artifact_dir)), best  # type: ignore[arg-type]

    # -- the whole path ----------------------------------------------------------------------
    def run(self, progress: ProgressFn = _noop) -> dict[str, Any]:
        """Import logs and data, build the training set, train every student, evaluate on every
        test set; returns the summary (also written to .graduate/summary.json)."""
        from graduate.store.runs import update_metrics

        self.check_test_sets()
        t_start = time.perf_counter()
        timings: dict[str, float] = {}

        t = time.perf_counter()
        imports = self.import_logs(progress)
        timings["import_logs_s"] = time.perf_counter() - t
        t = time.perf_counter()
        loaded = self.load_data(progress)
        timings["load_data_s"] = time.perf_counter() - t

        tests = self.load_test_sets()

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
        quality = {t.name for t in self.spec.test_sets if t.purpose == "quality"}
        try:
            for test in tests:
                progress(f"evaluate {test.name}", 0, 1)
                entry, calls = score_test_set(self.engine, self.spec, eval_run, test, [(tr.name, tr.run_id, tr.student) for tr in trained])
                teacher_calls_used += calls
                if test.name in quality:  # diagnostic (bias) sets do not pick the best student
                    for tr in trained:
                        scores[tr.name].append(entry["students"][tr.name]["accuracy"])
                per_test[test.name] = entry
                progress(f"evaluate {test.name}", 1, 1)
        except BaseException as exc:
            # A crash (or Ctrl-C) must not leave the evaluation "running" in `runs list` and `status`.
            fail_run(self.engine, eval_run, f"{type(exc).__name__}: {exc}"[:2000])
            raise
        timings["evaluate_s"] = time.perf_counter() - t

        teacher_cost = cost_of_teacher(self.spec, teacher_calls_used)
        for tr in trained:
            selection = sum(scores[tr.name]) / len(scores[tr.name])
            run = next(r for r in get_runs(self.engine, root=self.root, kind="train") if r.id == tr.run_id)
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
        t = time.perf_counter()
        assessment = self._assess(
            eval_run,
            tests,
            {tr.name: (tr.student, tr.run_id) for tr in trained},
            per_test,
            teacher_calls_used,
            summary["best_student"],
            summary["dataset"],
            {tr.name: {"fit_seconds": tr.fit_seconds, "train_size": len(dataset.examples), "artifact_bytes": artifact_bytes(tr.directory)} for tr in trained},
            progress,
        )
        summary["gates"] = assessment["gates"]
        summary["gates_passed"] = assessment["gates_passed"]
        summary["evaluation"] = str(self.workdir / "evaluation.json")
        summary["report"] = str(self.workdir / "report.html")
        timings["assess_s"] = time.perf_counter() - t
        _carry_label_quality(self.workdir, summary)
        (self.workdir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
        self.report()
        return summary

    # -- evaluation ------------------------------------------------------------------------
    def check_test_sets(self) -> None:
        """Before any work: every file and column the spec names exists, and every gold value of
        every test set is a task label (SpecError, listing every problem)."""
        from graduate.data.inputs import check_inputs

        check_inputs(self.spec, self.root / SPEC_FILENAME)
        check_test_set_gold(self.spec, self.root / SPEC_FILENAME)

    def load_test_sets(self) -> list[TestSet]:
        """The spec's test sets from the store, each checked against its frozen version: a set
        whose items or gold labels changed is refused (TestSetChangedError) until its version is raised."""
        from graduate.evaluate.frozen import freeze_test_set

        if not self.spec.test_sets:
            raise NotReadyError("graduate.yaml declares no test_sets; add at least one to evaluate against gold")
        tests = []
        for sel in self.spec.test_sets:
            test = load_test_set(self.engine, sel)
            freeze_test_set(self.engine, test, sel.version)
            tests.append(test)
        return tests

    def trained_students(self) -> dict[str, tuple[Student, RunRow]]:
        """Each spec student's newest finished training run that `graduate run` evaluated (it has a
        selection score; learning-curve runs on subsets don't), loaded from the store."""
        runs = get_runs(self.engine, root=self.root, kind="train", status="finished")
        out: dict[str, tuple[Student, RunRow]] = {}
        for sspec in self.spec.students:
            mine = [r for r in runs if r.name == sspec.label and r.artifact_dir and (Path(r.artifact_dir) / "kind.json").exists()]
            mine = [r for r in mine if (r.metrics or {}).get("selection_score") is not None] or mine
            if not mine:
                raise NotReadyError(f"student {sspec.label!r} is not trained yet; run `graduate run {self.root}` first")
            run = mine[-1]
            trained_as = next((s for s in run.spec.get("students", []) if (s.get("name") or s.get("kind")) == sspec.label), None)
            if trained_as is not None and (trained_as.get("kind"), trained_as.get("params") or {}) != (sspec.kind, sspec.params):
                raise NotReadyError(
                    f"student {sspec.label!r} changed in graduate.yaml since it was trained (run {run.id[:8]}); "
                    f"run `graduate run {self.root}` to retrain it"
                )
            out[sspec.label] = (load_student(Path(run.artifact_dir)), run)  # type: ignore[arg-type]
        return out

    def evaluate(self, progress: ProgressFn = _noop) -> dict[str, Any]:
        """Evaluate the trained students (from the store) and the teacher on every test set and
        judge the gates, as a new evaluation run; returns the assessment (also written to
        .graduate/evaluation.json). Imports and trains nothing."""
        self.check_test_sets()
        students = self.trained_students()
        tests = self.load_test_sets()
        eval_run = start_run(self.engine, kind="evaluate", name="evaluate", spec=json.loads(self.spec.model_dump_json()), seed=self.spec.seed)
        try:
            per_test: dict[str, Any] = {}
            calls: list[Any] = []
            for test in tests:
                progress(f"evaluate {test.name}", 0, 1)
                per_test[test.name], used = score_test_set(self.engine, self.spec, eval_run, test, [(n, r.id, s) for n, (s, r) in students.items()])
                calls += used
                progress(f"evaluate {test.name}", 1, 1)
            quality = [t.name for t in self.spec.test_sets if t.purpose == "quality"]
            best = max(students, key=lambda n: sum(per_test[q]["students"][n]["accuracy"] for q in quality)) if students else None
            first = next(iter(students.values()))[1] if students else None
            dataset = None
            if first is not None and first.artifact_dir:
                record = Path(first.artifact_dir).parent / "run.json"
                if record.exists():
                    dataset = json.loads(record.read_text()).get("dataset")
            info = {
                n: {"fit_seconds": (r.metrics or {}).get("fit_seconds"), "train_size": (r.metrics or {}).get("train_size"), "artifact_bytes": artifact_bytes(r.artifact_dir)}
                for n, (_, r) in students.items()
            }
            finish_run(self.engine, eval_run, metrics={"test_sets": per_test, "best_student": best})
            return self._assess(eval_run, tests, {n: (s, r.id) for n, (s, r) in students.items()}, per_test, calls, best, dataset, info, progress)
        except BaseException as exc:
            fail_run(self.engine, eval_run, f"{type(exc).__name__}: {exc}")
            raise

    def _assess(
        self,
        eval_run: str,
        tests: list[TestSet],
        students: dict[str, tuple[Student, str]],
        per_test: dict[str, Any],
        teacher_calls: list[Any],
        best: str | None,
        dataset: dict[str, Any] | None,
        info: dict[str, dict[str, Any]],
        progress: ProgressFn,
    ) -> dict[str, Any]:
        from graduate.evaluate.assessment import assess
        from graduate.store.runs import update_metrics

        assessment = assess(
            self.engine,
            self.spec,
            run_id=eval_run,
            tests=tests,
            students=students,
            entries=per_test,
            teacher_cost=cost_of_teacher(self.spec, teacher_calls),
            teacher_latencies_ms=[c.latency_ms for c in teacher_calls if c.source == "live"],
            best_student=best,
            dataset=dataset,
            student_info=info,
            progress=progress,
        )
        update_metrics(self.engine, eval_run, {"test_sets": per_test, "best_student": best, "assessment": assessment})
        (self.workdir / "evaluation.json").write_text(json.dumps(assessment, indent=2, default=str))
        return assessment

    def latest_assessment(self) -> dict[str, Any]:
        """The assessment of the newest finished evaluation run."""
        for run in reversed(get_runs(self.engine, root=self.root, kind="evaluate", status="finished")):
            if (run.metrics or {}).get("assessment"):
                return run.metrics["assessment"]  # type: ignore[index]
        raise NotReadyError(f"nothing evaluated yet; run `graduate run {self.root}` (or `graduate evaluate {self.root}`) first")

    def error_analysis(self, *, student: str | None = None, test_sets: list[str] | None = None, assessment: dict[str, Any] | None = None):
        """Group the newest evaluation's test items by who was right (see graduate.evaluate.error_analysis).
        Default test sets: the quality ones; ``test_sets`` may name any evaluated set."""
        from graduate.evaluate.error_analysis import analyse_errors

        assessment = assessment or self.latest_assessment()
        known = {t.name: t for t in self.spec.test_sets}
        names = test_sets or [n for n, t in assessment["test_sets"].items() if t.get("purpose", "quality") == "quality"]
        unknown = [n for n in names if n not in known or n not in assessment["test_sets"]]
        if unknown:
            raise NotReadyError(f"test sets {unknown} were not evaluated; evaluated: {sorted(assessment['test_sets'])}")
        tests = [load_test_set(self.engine, known[n]) for n in names]
        return analyse_errors(self.engine, self.spec, assessment, tests, student=student)

    def report(self, path: Path | None = None) -> Path:
        """Write the one-file HTML report of the newest evaluation (default .graduate/report.html)."""
        from graduate.evaluate.report import write_report

        assessment = self.latest_assessment()
        summary_path = self.workdir / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
        errors = self.error_analysis(assessment=assessment)
        return write_report(path or self.workdir / "report.html", spec=self.spec, root=self.root, engine=self.engine, assessment=assessment, summary=summary, errors=errors)

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


def _student_cls(kind: str) -> type | None:
    from graduate.students.registry import student_class

    try:
        return student_class(kind)
    except StudentError:
        return None


def _spec_defaults(kind: str, spec: ProjectSpec) -> dict[str, Any]:
    """Params a student kind derives from the spec (lora-llm: the teacher's prompt and answer format)."""
    return _student_cls(kind).defaults_from_spec(spec)


def _soft_matrix(soft: list[dict[str, float] | None], labels: list[str]) -> Any:
    """Teacher distributions as an (n, labels) array; rows without one are NaN (the student uses the hard label)."""
    import numpy as np

    return np.array([[float(d.get(lab, 0.0)) for lab in labels] if d else [np.nan] * len(labels) for d in soft])


def _defaults(kind: str) -> dict[str, Any]:
    from graduate.students.registry import student_class

    try:
        return dict(student_class(kind).DEFAULTS)
    except StudentError:
        return {}
