"""The context every pipeline step takes: ``Project.load(path)`` reads and checks graduate.yaml and
opens the store. Its methods are the steps, bound to it, for callers that hold a project."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from sqlalchemy import Engine

from graduate.data.build import Dataset
from graduate.data.import_calls import ImportReport
from graduate.evaluate.error_analysis import ErrorAnalysis
from graduate.evaluate.testsets import TestSet
from graduate.privacy import Redactor, input_redactor_for, redact_text, redactor_for
from graduate.errors import SpecError
from graduate.spec import ProjectSpec, StudentSpec
from graduate.store.db import open_engine, resolve_url
from graduate.store.runs import RunRow
from graduate.students.base import Student

from graduate.pipeline import assess, build, ingest, privacy, report, run, select, train
from graduate.pipeline.lock import WorkLock
from graduate.pipeline.progress import ProgressFn, no_progress
from graduate.pipeline.train import TrainResult
from graduate.pipeline.validate import load_checked_spec

if TYPE_CHECKING:
    from graduate.teacher.labeling import LabelStats

__all__ = ["Project", "ProgressFn", "TrainResult"]


class Project:
    def __init__(self, spec: ProjectSpec, root: Path, engine: Engine):
        self.spec = spec
        self.root = root
        self.engine = engine

    @classmethod
    def load(cls, path: Path | str) -> "Project":
        spec, root = load_checked_spec(path)
        return cls(spec, root, open_engine(resolve_url(spec.store.url, root)))

    @functools.cached_property
    def redactor(self) -> Redactor | None:
        """The redaction every stored request, answer and traffic row goes through (privacy.redact),
        or None when it is off."""
        return redactor_for(self.spec.privacy)

    @functools.cached_property
    def input_redactor(self) -> Redactor | None:
        """The redaction of item texts before they are stored and sent to the teacher
        (privacy.redact_teacher_input), or None when it is off."""
        return input_redactor_for(self.spec.privacy)

    def teacher_texts(self, texts: list[str]) -> list[str]:
        """Texts as the project stores them and sends them to the teacher (redacted when
        privacy.redact_teacher_input is on)."""
        return [redact_text(self.input_redactor, t) for t in texts]

    @property
    def workdir(self) -> Path:
        d = self.root / ".graduate"
        d.mkdir(parents=True, exist_ok=True)
        return d

    @functools.cached_property
    def _work_lock(self) -> WorkLock:
        return WorkLock(self.workdir, self.engine)

    def exclusive(self, what: str) -> contextlib.AbstractContextManager[None]:
        """Hold the project's work lock while ``what`` runs (graduate.pipeline.lock): BusyError at
        once when another process holds it; re-entrant within this process."""
        return self._work_lock.hold(what)

    # -- ingest, build, train ---------------------------------------------------------------
    def import_logs(self, progress: ProgressFn = no_progress) -> list[ImportReport]:
        return ingest.import_logs(self, progress)

    def import_batch(self, input_path: Path, output_path: Path | None, fmt: str = "batch") -> ImportReport:
        return ingest.import_batch(self, input_path, output_path, fmt)

    def load_data(self, progress: ProgressFn = no_progress) -> list[ingest.LoadedSource]:
        return ingest.load_data(self, progress)

    def build_training_set(self, *, spec: ProjectSpec | None = None, name: str = "train", progress: ProgressFn | None = None) -> Dataset:
        with self.exclusive("building the training set"):
            return build.build(self, spec=spec, name=name, progress=progress)

    def train(self, student_spec: StudentSpec, dataset: Dataset, *, seed: int | None = None, progress: ProgressFn = no_progress) -> TrainResult:
        with self.exclusive(f"training {student_spec.name or student_spec.kind}"):
            return train.train(self, student_spec, dataset, seed=seed, progress=progress)

    # -- which student ------------------------------------------------------------------------
    def best_student(self) -> tuple[Student, RunRow]:
        return select.best_student(self)

    def trained_students(self) -> dict[str, tuple[Student, RunRow]]:
        return select.trained_students(self)

    def select_student(self, name: str | None) -> tuple[Student, RunRow]:
        return select.select_student(self, name)

    # -- evaluate ------------------------------------------------------------------------------
    def run(self, progress: ProgressFn = no_progress) -> dict[str, Any]:
        """The whole path (graduate.pipeline.run); returns the summary written to summary.json."""
        with self.exclusive("graduate run"):
            return run.run(self, progress).summary

    def evaluate(self, progress: ProgressFn = no_progress) -> dict[str, Any]:
        with self.exclusive("graduate evaluate"):
            return run.evaluate(self, progress)

    def check_test_sets(self) -> None:
        assess.check_test_sets(self)

    def load_test_sets(self) -> list[TestSet]:
        return assess.load_test_sets(self)

    def latest_assessment(self) -> dict[str, Any]:
        return assess.latest_assessment(self)

    def error_analysis(self, *, student: str | None = None, test_sets: list[str] | None = None, assessment: dict[str, Any] | None = None) -> ErrorAnalysis:
        return report.error_analysis(self, student=student, test_sets=test_sets, assessment=assessment)

    def report(self, path: Path | None = None) -> Path:
        return report.write_html_report(self, path)

    # -- the data loop --------------------------------------------------------------------------
    def augment(
        self, kind: str = "counterfactual", progress: ProgressFn = no_progress, *, target: str | None = None, items: int = 20, per_item: int = 3, seed: int = 0
    ) -> Any:
        """New training items from the pool's labelled items: counterfactual term swaps
        (graduate.data.augment) or teacher paraphrases, labelled again (graduate.pipeline.generate)."""
        from graduate.data.augment import SOURCE, counterfactual
        from graduate.pipeline.generate import paraphrase

        if kind == "paraphrase":
            return paraphrase(self, target=target, items=items, per_item=per_item, seed=seed)
        if kind != "counterfactual":
            raise SpecError(f"augment kind {kind!r}: choose counterfactual (term swaps that keep the label) or paraphrase (teacher rewrites, labelled again)", field="--kind")
        if target is not None and target.strip().startswith("mentions '"):  # the term slice as `graduate errors` names it
            from graduate.evaluate.slices import parse_slice_name

            named = parse_slice_name(target, labels=list(self.spec.task.labels), length_buckets=self.spec.evaluation.length_buckets)
            target = str(named[1]) if named is not None and named[0] == "identity" else target
        dataset = self.build_training_set(name="train.augment-base", progress=progress)
        labelled = {ex.id: (lab, who) for ex, lab, who in zip(dataset.examples, dataset.labels, dataset.producers or []) if ex.source != SOURCE}
        return counterfactual(self.engine, self.spec, labelled, [ex for ex in dataset.examples if ex.source != SOURCE], target=target)

    def synth(self, *, target: str | None, n: int, seeds: int = 5, seed: int = 0) -> Any:
        """New texts the teacher writes from seed examples of a target (graduate.pipeline.generate)."""
        from graduate.pipeline.generate import synth

        return synth(self, target=target, n=n, seeds=seeds, seed=seed)

    # -- privacy --------------------------------------------------------------------------------
    def forget_plan(self, *, item: str | None = None, match: str | None = None) -> privacy.ForgetPlan:
        """What ``forget`` would delete (nothing is deleted)."""
        return privacy.plan_forget(self, item=item, match=match)

    def forget(self, *, item: str | None = None, match: str | None = None) -> privacy.ForgetReport:
        # One writer: a run at work holds the item's text and would write it back (predictions, files).
        with self.exclusive("graduate privacy forget"):
            return privacy.forget(self, item=item, match=match)

    def purge(self) -> privacy.PurgeReport:
        with self.exclusive("graduate privacy purge"):
            return privacy.purge(self)

    # -- use ------------------------------------------------------------------------------------
    def label(self, texts: list[str], *, progress: Callable[[int], None] | None = None, backend: Any = None, stats: LabelStats | None = None):
        """Send texts to the live teacher (cached, limited, budgeted); store calls and labels.
        ``stats``: a ``LabelStats`` kept up to date as calls settle (what was done when Ctrl-C stops it)."""
        from graduate.teacher.labeling import label_texts
        from graduate.teacher.registry import make_teacher

        backend = backend or make_teacher(self.spec.teacher)
        # One process spends at a time: the budget is read when labelling starts, so two at once
        # would each spend up to it (and pay for the same items twice).
        with self.exclusive("labelling with the teacher"):
            return asyncio.run(
                label_texts(
                    self.engine,
                    self.spec.teacher,
                    backend,
                    texts,
                    price=self.spec.price_for(self.spec.teacher.model),
                    progress=progress,
                    redactor=self.redactor,
                    stats=stats,
                )
            )
