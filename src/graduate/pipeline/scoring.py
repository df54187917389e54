"""Step 4, score: one evaluation run. Each test set's teacher answers are read once; each student
predicts every test set once (timed); both are stored as the run's predictions and scored from
those arrays. The scoreboard keeps them in memory, so the assessment reads no store rows back.

A scoreboard is opened inside ``evaluation_run``: whatever fails (a student that crashes while
predicting, the assessment, Ctrl-C) leaves the evaluate run failed, never "running" or finished.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

from graduate.data.import_labels import labeller_name, stored_labels
from graduate.data.teacher_labels import TeacherLabel, teacher_labels
from graduate.evaluate.assessment import Stored
from graduate.evaluate.cost import CostFigure, teacher_cost
from graduate.data.build import Dataset
from graduate.evaluate.cascade import VALIDATION_SET
from graduate.evaluate.evaluation import StudentPredictions, labeller_metrics, student_metrics, student_predictor, test_set_entry, validation_score
from graduate.evaluate.testsets import TestSet
from graduate.store.calls import CallRow
from graduate.store.runs import fail_run, finish_run, get_runs, save_predictions, start_run, update_metrics
from graduate.students.base import Student

from graduate.pipeline.progress import ProgressFn, no_progress
from graduate.pipeline.select import pick

if TYPE_CHECKING:
    from graduate.pipeline.project import Project


def predict_timed(student: Student, texts: list[str]) -> StudentPredictions:
    """Predict and measure CPU time (what serving costs) and wall time (what a caller waits)."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    probs = student.predict_proba(texts)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return StudentPredictions(student.decide(probs), probs, cpu, wall)


@dataclass
class Scoreboard:
    """One evaluate run: per test set the teacher's figures and each scored student's."""

    project: "Project"
    run_id: str
    tests: list[TestSet]
    quality_sets: list[str]
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)  # test set -> {n, content_hash, label_counts, teacher, students}
    students: dict[str, tuple[Student, str]] = field(default_factory=dict)  # name -> (student, train run id), in scoring order
    predictions: Stored = field(default_factory=dict)  # (test set, predictor) -> {example id: (label, probs)}
    calls: list[CallRow] = field(default_factory=list)  # the teacher calls that answered the test sets
    validation: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # name -> its score on the validation split (None: none held out)
    _answers: dict[str, dict[int, TeacherLabel]] = field(default_factory=dict)
    _validation_saved: bool = False

    def teacher_answers(self, test: TestSet) -> dict[int, TeacherLabel]:
        """The teacher's stored answers on a test set, read (and stored as predictions) once."""
        if test.name not in self._answers:
            p = self.project
            answers = teacher_labels(p.engine, p.spec.task, p.spec.teacher, test.examples)
            self._answers[test.name] = answers
            self.calls += [a.call for a in answers.values() if a.call is not None]
            answered = [ex for ex in test.examples if answers[ex.id].call is not None]
            labeller = p.spec.teacher.labeller
            save_predictions(
                p.engine,
                self.run_id,
                [{"example_id": ex.id, "test_set": test.name, "predictor": labeller, "label": answers[ex.id].label, "probs": answers[ex.id].probs} for ex in answered],
            )
            self.predictions[(test.name, labeller)] = {ex.id: (answers[ex.id].label, answers[ex.id].probs) for ex in answered}
            self.entries[test.name] = test_set_entry(p.spec, test, answers)
            imported = self._imported_labels(test)
            if imported:
                self.entries[test.name]["labellers"] = {who: labeller_metrics(p.spec.task, test, given, evaluation=p.spec.evaluation, seed=p.spec.seed) for who, given in imported.items()}
        return self._answers[test.name]

    def _imported_labels(self, test: TestSet) -> dict[str, dict[int, str | None]]:
        """Each ``label_imports`` labeller's stored labels on the test set's items."""
        names = [labeller_name(c) for li in self.project.spec.label_imports for c in li.columns]
        return stored_labels(self.project.engine, names, [ex.id for ex in test.examples]) if names else {}

    def add(
        self, name: str, train_run_id: str, student: Student, *, progress: ProgressFn = no_progress, validation: Dataset | None = None
    ) -> dict[str, dict[str, Any]]:
        """Score one student on every test set; returns {test set: metrics} and records them on its
        training run. With ``validation`` (the split ``model_selection`` held out of its training),
        also its score there (what ``best`` compares), recorded on the run too; without, the score
        its run recorded when it was trained."""
        p = self.project
        run = next(r for r in get_runs(p.engine, root=p.root, kind="train") if r.id == train_run_id)
        metrics = dict(run.metrics or {})
        if validation is not None:
            metrics["validation"] = self._validate(name, train_run_id, student, validation, progress)
        out: dict[str, dict[str, Any]] = {}
        for k, test in enumerate(self.tests):
            progress(f"evaluate {name}", k, len(self.tests))
            answers = self.teacher_answers(test)
            preds = predict_timed(student, [ex.text for ex in test.examples])
            who = student_predictor(name, train_run_id)
            rows = {ex.id: (lab, dict(zip(student.labels, map(float, pr)))) for ex, lab, pr in zip(test.examples, preds.labels, preds.probs)}
            save_predictions(
                p.engine, self.run_id, [{"example_id": ex_id, "test_set": test.name, "predictor": who, "label": lab, "probs": pr} for ex_id, (lab, pr) in rows.items()]
            )
            self.predictions[(test.name, who)] = rows  # type: ignore[assignment]
            out[test.name] = student_metrics(p.spec.task, test, preds, answers, p.spec.serving.cpu_core_hour_usd, evaluation=p.spec.evaluation, seed=p.spec.seed)
            self.entries[test.name]["students"][name] = out[test.name]
        progress(f"evaluate {name}", len(self.tests), len(self.tests))
        self.students[name] = (student, train_run_id)
        self.validation[name] = metrics.get("validation")
        update_metrics(p.engine, train_run_id, {**metrics, "test": out})
        return out

    def _validate(self, name: str, train_run_id: str, student: Student, validation: Dataset, progress: ProgressFn) -> dict[str, Any]:
        """The student's agreement with the validation split's training labels; its predictions (and,
        once, the teacher's labels there) are stored in this run under ``VALIDATION_SET``: with no
        calibration set, `graduate serve-plan` chooses the cascade threshold on them."""
        p = self.project
        progress(f"validate {name}", 0, 1)
        probs = student.predict_proba(validation.texts)
        pred = student.decide(probs)
        rows = [
            {"example_id": ex.id, "test_set": VALIDATION_SET, "predictor": student_predictor(name, train_run_id), "label": lab, "probs": dict(zip(student.labels, map(float, pr)))}
            for ex, lab, pr in zip(validation.examples, pred, probs)
        ]
        labeller = p.spec.teacher.labeller
        if not self._validation_saved:
            producers = validation.producers or [labeller] * len(validation.examples)
            rows += [
                {"example_id": ex.id, "test_set": VALIDATION_SET, "predictor": labeller, "label": lab, "probs": None}
                for ex, lab, who in zip(validation.examples, validation.labels, producers)
                if who == labeller
            ]
            self._validation_saved = True
        save_predictions(p.engine, self.run_id, rows)
        progress(f"validate {name}", 1, 1)
        score = validation_score(p.spec.task, validation.labels, pred, confidence=p.spec.evaluation.confidence_level)
        return {**score, "dataset_hash": validation.content_hash}

    def best(self) -> str | None:
        """The best of the scored students (``graduate.pipeline.select.pick``: the named one, else
        the highest validation score); the test figures never pick."""
        return pick(self.project.spec, self.validation)[0]

    def selection(self) -> dict[str, Any]:
        """What picked the best student: its name, why, and each student's validation score."""
        best, why = pick(self.project.spec, self.validation)
        return {"best_student": best, "why": why, "validation": dict(self.validation)}

    @property
    def teacher_cost(self) -> CostFigure:
        return teacher_cost(self.project.spec, self.calls)

    def close(self, extra: dict[str, Any] | None = None) -> None:
        finish_run(self.project.engine, self.run_id, metrics={"test_sets": self.entries, **(extra or {})})


@contextmanager
def evaluation_run(project: "Project", name: str, dataset_hash: str | None = None) -> Iterator[Scoreboard]:
    """Open an evaluate run on the spec's test sets (each checked against its frozen version: a
    changed set is refused until its version is raised); any failure inside marks it failed."""
    tests = project.load_test_sets()
    quality = [t.name for t in project.spec.test_sets if t.purpose == "quality"]
    spec = project.spec
    run_id = start_run(project.engine, kind="evaluate", name=name, spec=json.loads(spec.model_dump_json()), seed=spec.seed, dataset_hash=dataset_hash)
    board = Scoreboard(project, run_id, tests, quality)
    try:
        yield board
    except BaseException as exc:
        fail_run(project.engine, run_id, f"{type(exc).__name__}: {exc}"[:2000])
        raise
