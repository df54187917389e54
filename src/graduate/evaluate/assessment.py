"""The full assessment of one evaluation run: every metric, slice, bias figure, latency, cost and
gate, from the run's predictions (never from a model object, except to time it).

The result is one JSON-ready dict (``assess``), stored with the run and written to
``PROJECT/.graduate/evaluation.json``; the CLI tables, ``graduate errors`` and the HTML report all
read it. Shape::

    {run_id, generated_at, task: {labels, positive}, best_student, students: {NAME: {...}},
     test_sets: {NAME: {n, version, content_hash, purpose, label_counts,
                        teacher: {metrics..., per_label, confusion, ci, slices, worst_slices},
                        students: {NAME: {same + calibration}}}},
     serving: {teacher: {...}, students: {NAME: {latency_p50_ms, ..., cost_per_1k}}},
     bias: {original, perturbed, teacher: {...} | None, students: {NAME: {...}}} | None,
     gates: [{gate, test_set, student, passed, left, right, detail}], gates_passed, dataset}
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from sqlalchemy import Engine, select

from graduate.evaluate.bias import bias_pair_metrics, multi_label_bias_pair_metrics
from graduate.evaluate.calibration import calibration
from graduate.evaluate.cost import CostFigure
from graduate.evaluate.criteria import METRICS, Operand, judge
from graduate.evaluate.evaluation import score_matrix, student_predictor
from graduate.evaluate.frozen import save_results
from graduate.evaluate.intervals import bootstrap_intervals
from graduate.evaluate.latency import measure_latency, teacher_latency
from graduate.evaluate.metrics import confusion, label_metrics, pr_auc
from graduate.evaluate.slices import make_slices, slice_metrics, worst_identity_fpr, worst_slices
from graduate.evaluate.testsets import TestSet
from graduate.spec import ProjectSpec
from graduate.store.schema import predictions
from graduate.students.base import Student

ProgressFn = Callable[[str, int, "int | None"], None]

# (label, {label: prob} | None) per example id, per (test set, predictor)
Stored = dict[tuple[str, str], dict[int, tuple["str | None", "dict[str, float] | None"]]]


def load_predictions(engine: Engine, run_id: str) -> Stored:
    out: Stored = defaultdict(dict)
    stmt = select(predictions.c.test_set, predictions.c.predictor, predictions.c.example_id, predictions.c.label, predictions.c.probs).where(
        predictions.c.run_id == run_id
    )
    with engine.connect() as conn:
        for ts, who, ex, lab, probs in conn.execute(stmt):
            out[(ts, who)][ex] = (lab, probs)
    return out


def _clean(x: Any) -> Any:
    """JSON-safe: NaN/inf become None, numpy scalars plain numbers."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (np.floating, float)):
        f = float(x)
        return None if math.isnan(f) or math.isinf(f) else f
    if isinstance(x, np.integer):
        return int(x)
    return x


def _result_row(test: TestSet, t_out: dict[str, Any], predictor: str, figs: dict[str, Any]) -> dict[str, Any]:
    """One stored result row: a predictor's figures on one version of a test set."""
    return {
        "test_set": test.name,
        "test_set_version": t_out["version"],
        "test_set_hash": test.content_hash,
        "predictor": predictor,
        "metrics": _clean({k: v for k, v in figs.items() if k not in ("slices", "calibration")}),
    }


def _quality_figures(
    spec: ProjectSpec,
    test: TestSet,
    pred: list[str | None],
    probs: np.ndarray | None,
    base: dict[str, Any],
    slices: list[Any],
    seed: int,
) -> dict[str, Any]:
    labels, positive, ev = spec.task.labels, spec.task.positive, spec.evaluation
    idx = [i for i, p in enumerate(pred) if p is not None]
    gold = [test.gold[i] for i in idx]
    hard = [pred[i] for i in idx]
    scores = probs[idx] if probs is not None else None
    out = dict(base)
    out.update(label_metrics(gold, hard, labels=labels))  # type: ignore[arg-type]
    out["pr_auc"] = pr_auc(gold, scores, hard, labels=labels, positive=positive)  # type: ignore[arg-type]
    out["confusion"] = confusion(gold, hard, labels=labels)  # type: ignore[arg-type]
    if scores is not None:
        cal = calibration(gold, scores, labels=labels, positive=positive, bins=ev.calibration_bins)
        out["calibration"] = cal
        out["ece"], out["brier"] = cal["ece"], cal["brier"]
    else:
        out["calibration"], out["ece"], out["brier"] = None, None, None
    ci = bootstrap_intervals(
        gold, hard, scores, labels=labels, positive=positive, resamples=ev.bootstrap_resamples, level=ev.confidence_level, seed=seed  # type: ignore[arg-type]
    )
    out["ci"] = ci
    out["ci_level"] = ev.confidence_level
    for m in ("accuracy", "f1", "roc_auc"):
        out[f"{m}_ci_low"] = ci[m][0] if ci.get(m) else None
        out[f"{m}_ci_high"] = ci[m][1] if ci.get(m) else None
    rows = slice_metrics(slices, test.gold, pred, labels=labels, positive=positive)
    out["slices"] = rows
    out["worst_slices"] = worst_slices(rows, min_size=ev.min_slice_size, baseline=out.get("accuracy"))
    worst_term = worst_identity_fpr(rows, min_size=ev.min_slice_size)
    out["worst_identity"] = worst_term
    out["worst_identity_fpr"] = worst_term["fpr"] if worst_term else None
    return out


def assess(
    engine: Engine,
    spec: ProjectSpec,
    *,
    run_id: str,
    tests: Sequence[TestSet],
    students: dict[str, tuple[Student, str]],
    entries: dict[str, dict[str, Any]],
    teacher_cost: CostFigure,
    teacher_latencies_ms: Sequence[float | None] = (),
    best_student: str | None,
    dataset: dict[str, Any] | None = None,
    student_info: dict[str, dict[str, Any]] | None = None,
    progress: ProgressFn | None = None,
    predictions: Stored,
) -> dict[str, Any]:
    """Everything about one evaluation run. ``students`` maps name -> (student, train run id) (the
    student object only to time it); ``entries`` are the scoreboard's per test set; ``predictions``
    the run's predictions as the scoreboard holds them (the same rows it stored)."""
    report = progress or (lambda stage, done, total: None)
    labels = spec.task.labels
    stored = predictions
    specs = {t.name: t for t in spec.test_sets}
    ev = spec.evaluation
    out: dict[str, Any] = {
        "run_id": run_id,
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "project": spec.task.name,
        "task": {"labels": labels, "positive": spec.task.positive, "kind": spec.task.kind},
        "teacher": {"labeller": spec.teacher.labeller, "model": spec.teacher.model},
        "best_student": best_student,
        "students": {name: dict((student_info or {}).get(name, {}), kind=s.kind, run_id=rid) for name, (s, rid) in students.items()},
        "test_sets": {},
        "dataset": dataset,
    }
    results = []
    total = len(tests)
    for k, test in enumerate(tests):
        report("assess test sets", k, total)
        tspec = specs.get(test.name)
        entry = entries[test.name]
        texts = [ex.text for ex in test.examples]
        t_out: dict[str, Any] = {
            "n": len(test.examples),
            "version": tspec.version if tspec else 1,
            "purpose": tspec.purpose if tspec else "quality",
            "content_hash": test.content_hash,
            "label_counts": entry["label_counts"],
            "without_gold": test.without_gold,
            "teacher": None,
            "students": {},
        }
        if spec.task.multi_label:
            # The scoreboard's set figures are the whole story per predictor (per-label, micro/macro,
            # intervals, calibration per label); slices and confusion matrices are single-label views.
            t_out["teacher"] = dict(entry["teacher"])
            results.append(("teacher", spec.teacher.labeller, t_out["teacher"]))
            for name, (_, rid) in students.items():
                t_out["students"][name] = dict(entry["students"][name])
                results.append((name, student_predictor(name, rid), t_out["students"][name]))
            out["test_sets"][test.name] = t_out
            save_results(engine, run_id, [_result_row(test, t_out, predictor, figs) for _, predictor, figs in results])
            results.clear()
            continue
        slices = make_slices(texts, test.gold, labels=labels, length_buckets=ev.length_buckets, identity_terms=ev.identity_terms)
        teacher_stored = stored.get((test.name, spec.teacher.labeller), {})
        t_pred = [teacher_stored.get(ex.id, (None, None))[0] for ex in test.examples]
        if entry["teacher"].get("too_few_answers"):  # its figures there would mean nothing: counts only
            t_pred = [None] * len(t_pred)
        # Its soft labels (logprobs) when every answered item has one: calibration and intervals on them too.
        t_probs = [teacher_stored.get(ex.id, (None, None))[1] for ex in test.examples]
        soft = all(pr for lab, pr in zip(t_pred, t_probs) if lab is not None) and any(lab is not None for lab in t_pred)
        t_scores = score_matrix(t_probs, labels) if soft else None
        t_out["teacher"] = _quality_figures(spec, test, t_pred, t_scores, entry["teacher"], slices, spec.seed)
        results.append(("teacher", spec.teacher.labeller, t_out["teacher"]))
        for name, (student, rid) in students.items():
            s_stored = stored.get((test.name, student_predictor(name, rid)), {})
            pred = [s_stored.get(ex.id, (None, None))[0] for ex in test.examples]
            probs = np.array([[((s_stored.get(ex.id, (None, None))[1]) or {}).get(lab, 0.0) for lab in labels] for ex in test.examples])
            figs = _quality_figures(spec, test, pred, probs, entry["students"][name], slices, spec.seed)
            t_out["students"][name] = figs
            results.append((name, student_predictor(name, rid), figs))
        out["test_sets"][test.name] = t_out
        save_results(engine, run_id, [_result_row(test, t_out, predictor, figs) for _, predictor, figs in results])
        results.clear()
    report("assess test sets", total, total)

    # serving: latency on quality texts, cost per 1k weighted over every test set scored
    quality = [t for t in tests if (specs.get(t.name) is None or specs[t.name].purpose == "quality")]
    sample_texts = [ex.text for t in quality for ex in t.examples] or [ex.text for t in tests for ex in t.examples]
    step = max(1, len(sample_texts) // max(ev.latency_items, 1))
    sample_texts = sample_texts[::step][: ev.latency_items]
    t_lat = teacher_latency(teacher_latencies_ms)
    serving: dict[str, Any] = {
        "teacher": {
            "cost_per_1k": teacher_cost.per_1k_usd,
            "cost_estimated": teacher_cost.estimated,
            "cost_basis": teacher_cost.basis,
            "latency_items": t_lat["items"],
            "latency_p50_ms": t_lat["single_ms"]["p50"],
            "latency_p95_ms": t_lat["single_ms"]["p95"],
            "latency_p99_ms": t_lat["single_ms"]["p99"],
        },
        "students": {},
    }
    for j, (name, (student, _)) in enumerate(students.items()):
        report("time students", j, len(students))
        lat = measure_latency(student, sample_texts, items=ev.latency_items, batch_size=ev.latency_batch_size)
        costs = [(entries[t.name]["students"][name].get("cost_per_1k_usd"), entries[t.name]["n"]) for t in tests]
        costs = [(c, n) for c, n in costs if c is not None and n]
        cost = sum(c * n for c, n in costs) / sum(n for _, n in costs) if costs else None
        serving["students"][name] = {
            "cost_per_1k": cost,
            "cost_basis": f"CPU time measured while predicting {sum(n for _, n in costs)} test items x ${spec.serving.cpu_core_hour_usd}/core-hour",
            "latency_items": lat["items"],
            "latency_p50_ms": lat["single_ms"]["p50"],
            "latency_p95_ms": lat["single_ms"]["p95"],
            "latency_p99_ms": lat["single_ms"]["p99"],
            "batch_size": lat["batch_size"],
            "batch_ms_per_item": lat["batch_ms_per_item"]["p50"],
            "batch_ms_per_item_p95": lat["batch_ms_per_item"]["p95"],
            "batch_ms_per_item_p99": lat["batch_ms_per_item"]["p99"],
        }
    report("time students", len(students), len(students))
    out["serving"] = serving

    # the identity-term bias pair
    out["bias"] = None
    pair = ev.bias_pair
    by_name = {t.name: t for t in tests}
    if pair is not None and pair.original in by_name and pair.perturbed in by_name:
        orig, pert = by_name[pair.original], by_name[pair.perturbed]
        positive = spec.task.positive

        def preds_of(test: TestSet, who: str) -> dict[int, tuple[str | None, float | None]]:
            rows = stored.get((test.name, who), {})
            return {ex: (lab, (probs or {}).get(positive) if probs else None) for ex, (lab, probs) in rows.items()}

        def pair_figures(who: str) -> dict[str, Any] | None:
            if spec.task.multi_label:  # each label in turn is the positive class
                return multi_label_bias_pair_metrics(
                    orig, pert, stored.get((orig.name, who), {}), stored.get((pert.name, who), {}),
                    labels=list(labels), identity_terms=ev.identity_terms, min_size=ev.min_slice_size,
                )
            return bias_pair_metrics(
                orig, pert, preds_of(orig, who), preds_of(pert, who), positive=positive, identity_terms=ev.identity_terms, min_size=ev.min_slice_size
            )

        bias: dict[str, Any] = {"original": pair.original, "perturbed": pair.perturbed, "identity_terms": ev.identity_terms, "students": {}}
        if spec.task.multi_label:
            bias["labels"] = list(labels)
        bias["teacher"] = pair_figures(spec.teacher.labeller)
        answered = (bias["teacher"] or {}).get("pairs", 0)
        if not {ex.external_id for ex in orig.examples} & {ex.external_id for ex in pert.examples}:
            # shown where the teacher's note is: no one is measured, and the fix is in the data
            bias["teacher_note"] = (
                f"{pair.original} and {pair.perturbed} share no item id, so no pair is measured (a pair is the same id in both sets); "
                "give both data sources the same id_column values"
            )
        elif answered < min(len(orig.examples), len(pert.examples)) / 2:
            bias["teacher_note"] = (
                f"the teacher ({spec.teacher.model}) has recorded answers on only {answered} of the pairs of {pair.original} / "
                f"{pair.perturbed}, so its own bias is not measured here; label the sets with `graduate label` to compare"
            )
        for name, (_, rid) in students.items():
            bias["students"][name] = pair_figures(student_predictor(name, rid))
        out["bias"] = bias

    out = _clean(out)
    gate_results = judge_gates(spec, out)
    out["gates"] = [g.as_dict() for g in gate_results]
    out["gates_passed"] = all(g.passed for g in gate_results)
    return _clean(out)


def figure(assessment: dict[str, Any], operand: Operand, student: str, test_set: str | None) -> float | None:
    """The figure a gate operand names, from an assessment (None where not measured)."""
    info = METRICS[operand.metric]
    teacher = operand.subject == "teacher"
    if info.scope == "test":
        ts = (assessment.get("test_sets") or {}).get(test_set or "")
        if ts is None:
            return None
        figs = ts.get("teacher") if teacher else (ts.get("students") or {}).get(student)
        return operand.value(figs)
    if info.scope == "serving":
        serving = assessment.get("serving") or {}
        figs = serving.get("teacher") if teacher else (serving.get("students") or {}).get(student)
        return None if figs is None else figs.get(operand.metric)
    bias = assessment.get("bias") or {}
    figs = bias.get("teacher") if teacher else (bias.get("students") or {}).get(student)
    if not figs:
        return None
    key = operand.metric.removeprefix("bias_")
    if operand.label is not None:  # label sets: that label as the positive class
        return ((figs.get("per_label") or {}).get(operand.label) or {}).get(key)
    return (figs.get("max_over_labels") or figs).get(key)  # label sets: the worst label's figure


def judge_gates(spec: ProjectSpec, assessment: dict[str, Any]) -> list[Any]:
    best = assessment.get("best_student") or ""
    quality = [name for name, t in assessment["test_sets"].items() if t.get("purpose", "quality") == "quality"]
    out = []
    for gate in spec.parsed_gates:
        out += judge(gate, lambda o, s, ts: figure(assessment, o, s, ts), best_student=best, quality_sets=quality)
    return out


def artifact_bytes(directory: Path | str | None) -> int | None:
    if not directory:
        return None
    d = Path(directory)
    if not d.exists():
        return None
    return sum(p.stat().st_size for p in d.rglob("*") if p.is_file())
