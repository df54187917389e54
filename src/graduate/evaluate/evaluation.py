"""Score the teacher and the students against gold on each test set."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from graduate.data.teacher_labels import TeacherLabel
from graduate.evaluate.cost import CostFigure, student_cost_per_1k
from graduate.evaluate.metrics import agreement, classification_metrics
from graduate.evaluate.testsets import TestSet
from graduate.spec import TaskSpec
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


def teacher_metrics(task: TaskSpec, test: TestSet, answers: dict[int, TeacherLabel]) -> dict[str, Any]:
    """Teacher quality on the items it answered with a parseable label (the rest are counted)."""
    pairs = [(g, answers[ex.id].label) for ex, g in zip(test.examples, test.gold) if answers[ex.id].label is not None]
    out: dict[str, Any] = classification_metrics(
        [g for g, _ in pairs], [p for _, p in pairs], labels=task.labels, positive=task.positive  # type: ignore[misc]
    )
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
