"""Score the teacher and the students against gold on one test set, from their answers and
predictions (arrays), never from a model: graduate.pipeline.scoring predicts once and calls these."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from graduate.data.balance import per_label_counts
from graduate.data.teacher_labels import TeacherLabel
from graduate.evaluate.cost import CostFigure, student_cost_per_1k
from graduate.evaluate.metrics import agreement, classification_metrics
from graduate.evaluate.multi_label import multi_label_metrics
from graduate.formats import labelset
from graduate.evaluate.testsets import TestSet
from graduate.spec import EvaluationSpec, ProjectSpec, TaskSpec


@dataclass
class StudentPredictions:
    """One student's predictions on a test set, in its order, and what predicting them took."""

    labels: list[str]
    probs: np.ndarray
    cpu_seconds: float
    wall_seconds: float


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


def teacher_metrics(
    task: TaskSpec, test: TestSet, answers: dict[int, TeacherLabel], *, min_answers: int = 0, evaluation: EvaluationSpec | None = None, seed: int = 0
) -> dict[str, Any]:
    """Teacher quality on the items it answered with a parseable label (the rest are counted).
    ROC-AUC comes from its soft labels where the store has them for every answered item, else from
    its hard labels; ``scores_from`` says which. Too few answers (``enough_teacher_answers``): the
    counts only, every figure None (shown as "–"; gates on them are "not measured")."""
    pairs = [(g, answers[ex.id].label) for ex, g in zip(test.examples, test.gold) if answers[ex.id].label is not None]
    if not enough_teacher_answers(len(pairs), len(test.examples), min_answers):
        pairs_shown: list[tuple[str, str | None]] = []
    else:
        pairs_shown = pairs
    scores = teacher_scores(task, test, answers) if pairs_shown and not task.multi_label else None
    if task.multi_label:
        out: dict[str, Any] = set_metrics(task, [g for g, _ in pairs_shown], [p for _, p in pairs_shown], evaluation=evaluation, seed=seed)  # type: ignore[misc]
    else:
        out = classification_metrics(
            [g for g, _ in pairs_shown], [p for _, p in pairs_shown], labels=task.labels, positive=task.positive, scores=scores  # type: ignore[misc]
        )
    out["n"] = len(pairs)
    out["too_few_answers"] = bool(pairs) and not pairs_shown
    out["scores_from"] = None if not pairs_shown else ("soft labels (logprobs)" if scores is not None else "hard labels")
    out["answered"] = len(pairs)
    unparsed = [ex for ex in test.examples if answers[ex.id].call is not None and answers[ex.id].label is None]
    out["unparseable"] = len(unparsed)
    # which, and what was wrong (the parser's words: unknown label word 'x', empty answer)
    out["unparseable_examples"] = [f"{ex.source} id {ex.external_id}: {answers[ex.id].error}" for ex in unparsed[:20]]
    out["missing"] = sum(1 for ex in test.examples if answers[ex.id].call is None)
    return out


def labeller_metrics(task: TaskSpec, test: TestSet, given: dict[int, str | None], *, evaluation: EvaluationSpec | None = None, seed: int = 0) -> dict[str, Any]:
    """An earlier labeller's figures (``label_imports``) on the items it labelled, like the teacher's."""
    pairs = [(g, given[ex.id]) for ex, g in zip(test.examples, test.gold) if given.get(ex.id) is not None]
    gold, pred = [g for g, _ in pairs], [p for _, p in pairs]
    if task.multi_label:
        out: dict[str, Any] = set_metrics(task, gold, pred, evaluation=evaluation, seed=seed)  # type: ignore[arg-type]
    else:
        out = classification_metrics(gold, pred, labels=task.labels, positive=task.positive)  # type: ignore[arg-type]
    out["n"] = out["answered"] = len(pairs)
    out["missing"] = len(test.examples) - len(pairs)
    return out


def student_metrics(
    task: TaskSpec,
    test: TestSet,
    preds: StudentPredictions,
    answers: dict[int, TeacherLabel],
    core_hour_usd: float,
    *,
    evaluation: EvaluationSpec | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """A student's figures on a test set. Its agreement with the teacher counts the items the teacher
    answered; too few of them (``evaluation.min_teacher_answers``, as for the teacher's own figures) leave it
    None: 4 answers of 1,492 bias items gave an agreement that looked like a real figure."""
    both = [(answers[ex.id].label, p) for ex, p in zip(test.examples, preds.labels) if answers[ex.id].label is not None]
    agreement_items = len(both)
    min_answers = evaluation.min_teacher_answers if evaluation is not None else 0
    if not enough_teacher_answers(len(both), len(test.examples), min_answers):
        both = []
    if task.multi_label:
        out: dict[str, Any] = set_metrics(task, test.gold, preds.labels, scores=preds.probs, evaluation=evaluation, seed=seed)
        # the same label set as the teacher's; kappa has no single-label meaning here
        out["agreement_with_teacher"] = sum(t == p for t, p in both) / len(both) if both else None
        out["kappa_with_teacher"] = None
    else:
        out = classification_metrics(test.gold, preds.labels, labels=task.labels, positive=task.positive, scores=preds.probs)
        agree = agreement([t for t, _ in both], [p for _, p in both])  # type: ignore[misc]
        out["agreement_with_teacher"] = agree["agreement"]
        out["kappa_with_teacher"] = agree["kappa"]
    out["agreement_items"] = agreement_items  # the teacher's answers it was (or was not) measured on
    cost: CostFigure = student_cost_per_1k(preds.cpu_seconds, len(test.examples), core_hour_usd)
    out["cost_per_1k_usd"] = cost.per_1k_usd
    out["cost_basis"] = cost.basis
    out["latency_ms_per_item"] = 1000 * preds.wall_seconds / max(len(test.examples), 1)
    return out


def selection_metric(task: TaskSpec) -> str:
    """The figure that ranks students (on the validation split, ``validation_score``): accuracy, or
    micro-F1 for a multi-label task (exact-set accuracy would ignore every partly right set)."""
    return "micro_f1" if task.multi_label else "accuracy"


def validation_score(task: TaskSpec, labels: Sequence[str], pred: Sequence[str], *, confidence: float = 0.95) -> dict[str, Any]:
    """How well a student reproduces the training labels of the validation split (what picks the
    best student): accuracy with its Wilson interval, or micro-F1 for a multi-label task."""
    metric = selection_metric(task)
    n = len(labels)
    if n == 0:
        return {"metric": metric, "n": 0, "score": None, "ci": None}
    if task.multi_label:
        figs = set_metrics(task, labels, pred, evaluation=EvaluationSpec(bootstrap_resamples=0))
        return {"metric": metric, "n": n, "score": float(figs["micro_f1"]), "ci": None}
    from scipy.stats import binomtest

    right = sum(a == b for a, b in zip(labels, pred))
    ci = binomtest(right, n).proportion_ci(confidence_level=confidence, method="wilson")
    return {"metric": metric, "n": n, "score": right / n, "ci": [float(ci.low), float(ci.high)]}


def set_metrics(
    task: TaskSpec, gold: Sequence[str], pred: Sequence[str], *, scores: np.ndarray | None = None, evaluation: EvaluationSpec | None = None, seed: int = 0
) -> dict[str, Any]:
    """Multi-label figures of label sets given as canonical strings (graduate.evaluate.multi_label),
    with ``evaluation``'s bootstrap resamples, confidence level and calibration bins (the defaults without it)
    and the bootstrap drawn from ``seed`` (the project's, as single-label intervals are)."""
    ev = evaluation or EvaluationSpec()
    order = task.labels
    g = np.array([labelset.indicator(v, order) for v in gold], dtype=int).reshape(len(gold), len(order))
    p = np.array([labelset.indicator(v, order) for v in pred], dtype=int).reshape(len(pred), len(order))
    return multi_label_metrics(g, p, labels=order, scores=scores, resamples=ev.bootstrap_resamples if len(gold) > 1 else 0, level=ev.confidence_level, seed=seed, bins=ev.calibration_bins)


def test_set_entry(spec: ProjectSpec, test: TestSet, answers: dict[int, TeacherLabel]) -> dict[str, Any]:
    """A test set's entry before any student: size, content hash, gold label counts and the
    teacher's figures (students are added under ``students`` as they are scored)."""
    return {
        "n": len(test.examples),
        "without_gold": test.without_gold,  # tagged for the set but no gold: not scored
        "content_hash": test.content_hash,
        "label_counts": per_label_counts(test.gold, spec.task.labels) if spec.task.multi_label else {lab: test.gold.count(lab) for lab in spec.task.labels},
        "teacher": teacher_metrics(spec.task, test, answers, min_answers=spec.evaluation.min_teacher_answers, evaluation=spec.evaluation, seed=spec.seed),
        "students": {},
    }


def student_predictor(name: str, train_run_id: str) -> str:
    """How a student's predictions are named in the store: ``student:NAME:TRAIN_RUN_ID``."""
    return f"student:{name}:{train_run_id}"
