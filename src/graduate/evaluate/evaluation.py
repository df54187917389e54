"""Score the teacher and the students against gold on each test set."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from sqlalchemy import Engine

from graduate.data.teacher_labels import TeacherLabel, teacher_labels
from graduate.evaluate.cost import CostFigure, student_cost_per_1k
from graduate.evaluate.metrics import agreement, classification_metrics
from graduate.evaluate.testsets import TestSet
from graduate.spec import ProjectSpec, TaskSpec
from graduate.store.calls import CallRow
from graduate.store.runs import save_predictions
from graduate.students.base import Student


@dataclass
class StudentPredictions:
    labels: list[str]
    probs: np.ndarray
    cpu_seconds: float
    wall_seconds: float


def predict_timed(student: Student, texts: list[str]) -> StudentPredictions:
    """Predict and measure CPU time (what serving costs) and wall time (what a caller waits)."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    probs = student.predict_proba(texts)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return StudentPredictions([student.labels[i] for i in probs.argmax(axis=1)], probs, cpu, wall)


def teacher_scores(task: TaskSpec, test: TestSet, answers: dict[int, TeacherLabel]) -> np.ndarray | None:
    """The teacher's soft labels (from its answers' logprobs) for the items it answered, rows in
    test-set order; None unless every answered item has one (hard and soft figures never mix)."""
    rows = [answers[ex.id] for ex in test.examples if answers[ex.id].label is not None]
    if not rows or any(a.probs is None for a in rows):
        return None
    return score_matrix([a.probs for a in rows], task.labels)


def score_matrix(probs: Sequence[dict[str, float] | None], labels: list[str]) -> np.ndarray:
    """Soft labels as an (items, labels) array, rounded: probabilities normalised from logprobs
    differ in their last bits, which would break ties between equal scores at random and move
    ROC-AUC (by 0.2 points on a 71-item set)."""
    return np.round(np.array([[float((p or {}).get(lab, 0.0)) for lab in labels] for p in probs]), 9)


def enough_teacher_answers(answered: int, items: int, min_answers: int) -> bool:
    """Whether the teacher answered enough of a set for its figures to mean something: at least
    ``min_answers`` items, or nearly all (90%) of a smaller set. (5 answers of 1,492 gave the
    teacher an accuracy of 1.000 on the bias sets.)"""
    return answered > 0 and (answered >= min_answers or answered >= 0.9 * items)


def teacher_metrics(task: TaskSpec, test: TestSet, answers: dict[int, TeacherLabel], *, min_answers: int = 0) -> dict[str, Any]:
    """Teacher quality on the items it answered with a parseable label (the rest are counted).
    ROC-AUC comes from its soft labels where the store has them for every answered item, else from
    its hard labels; ``scores_from`` says which. Too few answers (``enough_teacher_answers``): the
    counts only, every figure None (shown as "–"; gates on them are "not measured")."""
    pairs = [(g, answers[ex.id].label) for ex, g in zip(test.examples, test.gold) if answers[ex.id].label is not None]
    if not enough_teacher_answers(len(pairs), len(test.examples), min_answers):
        pairs_shown: list[tuple[str, str | None]] = []
    else:
        pairs_shown = pairs
    scores = teacher_scores(task, test, answers) if pairs_shown else None
    out: dict[str, Any] = classification_metrics(
        [g for g, _ in pairs_shown], [p for _, p in pairs_shown], labels=task.labels, positive=task.positive, scores=scores  # type: ignore[misc]
    )
    out["n"] = len(pairs)
    out["too_few_answers"] = bool(pairs) and not pairs_shown
    out["scores_from"] = None if not pairs_shown else ("soft labels (logprobs)" if scores is not None else "hard labels")
    out["answered"] = len(pairs)
    out["unparseable"] = sum(1 for ex in test.examples if answers[ex.id].call is not None and answers[ex.id].label is None)
    out["missing"] = sum(1 for ex in test.examples if answers[ex.id].call is None)
    return out


def student_metrics(
    task: TaskSpec, test: TestSet, preds: StudentPredictions, answers: dict[int, TeacherLabel], core_hour_usd: float
) -> dict[str, Any]:
    out: dict[str, Any] = classification_metrics(
        test.gold, preds.labels, labels=task.labels, positive=task.positive, scores=preds.probs
    )
    both = [(answers[ex.id].label, p) for ex, p in zip(test.examples, preds.labels) if answers[ex.id].label is not None]
    agree = agreement([t for t, _ in both], [p for _, p in both])  # type: ignore[misc]
    out["agreement_with_teacher"] = agree["agreement"]
    out["kappa_with_teacher"] = agree["kappa"]
    cost: CostFigure = student_cost_per_1k(preds.cpu_seconds, len(test.examples), core_hour_usd)
    out["cost_per_1k_usd"] = cost.per_1k_usd
    out["cost_basis"] = cost.basis
    out["latency_ms_per_item"] = 1000 * preds.wall_seconds / max(len(test.examples), 1)
    return out


def score_test_set(
    engine: Engine,
    spec: ProjectSpec,
    run_id: str,
    test: TestSet,
    students: Sequence[tuple[str, str, Student]],
) -> tuple[dict[str, Any], list[CallRow]]:
    """Teacher answers and each student's predictions on one test set, stored as predictions of
    ``run_id`` (students with their probabilities), and scored against gold.

    ``students`` holds (name, train run id, student). Returns the test set's entry (n, hash,
    label counts, teacher and per-student metrics) and the teacher calls that answered.
    """
    answers = teacher_labels(engine, spec.task, spec.teacher, test.examples)
    calls = [a.call for a in answers.values() if a.call is not None]
    entry: dict[str, Any] = {
        "n": len(test.examples),
        "content_hash": test.content_hash,
        "label_counts": {lab: test.gold.count(lab) for lab in spec.task.labels},
        "teacher": teacher_metrics(spec.task, test, answers, min_answers=spec.evaluation.min_teacher_answers),
        "students": {},
    }
    texts = [ex.text for ex in test.examples]
    save_predictions(
        engine,
        run_id,
        [
            {"example_id": ex.id, "test_set": test.name, "predictor": spec.teacher.labeller, "label": answers[ex.id].label, "probs": answers[ex.id].probs}
            for ex in test.examples
            if answers[ex.id].call is not None
        ],
    )
    for name, train_run_id, student in students:
        preds = predict_timed(student, texts)
        save_predictions(
            engine,
            run_id,
            [
                {
                    "example_id": ex.id,
                    "test_set": test.name,
                    "predictor": student_predictor(name, train_run_id),
                    "label": lab,
                    "probs": dict(zip(student.labels, map(float, p))),
                }
                for ex, lab, p in zip(test.examples, preds.labels, preds.probs)
            ],
        )
        entry["students"][name] = student_metrics(spec.task, test, preds, answers, spec.serving.cpu_core_hour_usd)
    return entry, calls  # type: ignore[return-value]


def student_predictor(name: str, train_run_id: str) -> str:
    """How a student's predictions are named in the store: ``student:NAME:TRAIN_RUN_ID``."""
    return f"student:{name}:{train_run_id}"
