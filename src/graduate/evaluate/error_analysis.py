"""Error analysis: who was right on each test item, the worst slices, and the limitations in words.

Every item of the chosen test sets falls in one group (items both got right are left out):

- ``distillation_gap``: the student is wrong and the teacher right (what distillation lost);
- ``both_wrong``: both are wrong (a hard item, or a wrong gold label);
- ``student_better``: the teacher is wrong and the student right;
- ``student_wrong_no_teacher``: the student is wrong and the teacher has no answer for the item.

Within a group, items are ranked by the student's confidence in its own label, most confident
first: a confidently wrong student is the most informative item to review.

Multi-label tasks: "right" is the whole label set; the reason names the labels the student missed
(``-care``) or added (``+loyalty``) against gold, the confidence is the least sure of its per-label
decisions, and ``per_label`` counts each label's false positives and negatives for the student and
the teacher on the same items (where the student trails the teacher, label by label).

Review queue CSV (``graduate errors PROJECT`` writes one file per group to
``PROJECT/.graduate/errors/GROUP.csv``, UTF-8, with a header row). Columns, in order:

=====================  ==============================================================================
example_id             the store's example id (``examples.id``): the key a correction is imported by
source                 the data source name in graduate.yaml
external_id            the item's id in that source (e.g. the CSV's id column)
test_set               the test set the item was evaluated in
text                   the item's text
gold                   the gold label used for the figures
teacher_label          the teacher's parsed label (empty: no answer or unparseable)
student_label          the student's label
student_confidence     the student's probability for its own label
p_<label>              one column per task label, in the task's label order: the student's probability
group                  one of the groups above
reason                 one sentence: why the item is in the queue
corrected_label        EMPTY, for the reviewer: the right label, one of the task's labels
reviewer               EMPTY, for the reviewer: who decided
note                   EMPTY, for the reviewer: free text
=====================  ==============================================================================

An importer of corrections reads ``example_id`` (checked against ``source`` and ``external_id``),
``corrected_label``, ``reviewer`` and ``note`` from rows where ``corrected_label`` is filled in;
every other column is context for the reviewer and may be ignored.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from sqlalchemy import Engine

from graduate.errors import InputDataError, written_whole
from graduate.evaluate.cost import format_usd_per_1k
from graduate.evaluate.assessment import load_predictions
from graduate.evaluate.evaluation import student_predictor
from graduate.evaluate.testsets import TestSet
from graduate.data.review import csv_cell, review_columns
from graduate.formats import labelset
from graduate.spec import ProjectSpec

GROUPS = ["distillation_gap", "both_wrong", "student_better", "student_wrong_no_teacher"]
GROUP_TITLES = {
    "distillation_gap": "student wrong, teacher right (the distillation gap)",
    "both_wrong": "both wrong (hard or mislabelled items)",
    "student_better": "teacher wrong, student right",
    "student_wrong_no_teacher": "student wrong, no teacher answer",
}


@dataclass
class ErrorAnalysis:
    student: str
    student_run_id: str
    test_sets: list[str]
    labels: list[str]
    rows: list[dict[str, Any]]  # review-queue rows, every group, ranked within each group
    counts: dict[str, dict[str, int]]  # test set -> group -> items (plus "items", "both_right", "student_right_no_teacher")
    worst_slices: dict[str, list[dict[str, Any]]]  # test set -> the student's worst slices
    gap_slices: dict[str, list[dict[str, Any]]]  # test set -> slices where it trails the teacher most
    limitations: list[str] = field(default_factory=list)
    # multi-label: test set -> label -> {student_fp, student_fn, teacher_fp, teacher_fn, items, gap}
    per_label: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)

    def group(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["group"] == name]

    def export(self, directory: Path) -> dict[str, Path]:
        """One review-queue CSV per group (empty groups too, so a reviewer sees they are empty)."""
        blocker = next((p for p in (directory, *directory.parents) if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            what = "is a file" if blocker == directory else f"{blocker} is a file"
            raise InputDataError(f"{what}, not a folder; give a folder for the review CSVs", path=directory)
        directory.mkdir(parents=True, exist_ok=True)
        cols = review_columns(self.labels)
        out = {}
        for g in GROUPS:
            path = directory / f"{g}.csv"
            with written_whole(path, newline="") as f:  # whole or not at all, even with two `errors` at once
                w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
                w.writeheader()
                for r in self.group(g):
                    w.writerow({c: csv_cell(r.get(c)) for c in cols})
            out[g] = path
        return out


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _reason(group: str, gold: str, teacher: str | None, student: str, conf: float) -> str:
    if group == "distillation_gap":
        return f"student said {student} (p={conf:.2f}); gold and the teacher say {gold}"
    if group == "both_wrong":
        if teacher == student:
            return f"student (p={conf:.2f}) and teacher both say {student}, gold says {gold}: a hard item, or the gold label is wrong"
        return f"student says {student} (p={conf:.2f}), teacher {teacher}, gold {gold}"
    if group == "student_better":
        return f"teacher said {teacher}; the student got gold's {gold} right (p={conf:.2f})"
    return f"student said {student} (p={conf:.2f}), gold says {gold}; the teacher has no answer for this item"


def _set_reason(group: str, gold: str, teacher: str | None, student: str, conf: float, labels: list[str]) -> str:
    """Multi-label: which labels the student (and the teacher) missed (-) or added (+) against gold."""

    def diff(pred: str | None) -> str:
        added, missed = _label_errors(gold, pred, labels)
        parts = [f"-{lab}" for lab in labels if lab in missed] + [f"+{lab}" for lab in labels if lab in added]
        return ", ".join(parts) or "right"

    if group == "student_better":
        return f"teacher {diff(teacher)}; the student got gold's {gold} right (least sure decision p={conf:.2f})"
    who = f"student {diff(student)} (least sure decision p={conf:.2f})"
    if teacher is None:
        return f"{who} against gold {gold}; the teacher has no answer for this item"
    return f"{who}; teacher {diff(teacher)}; gold {gold}"


def _label_errors(gold: str, pred: str | None, labels: list[str]) -> tuple[set[str], set[str]]:
    g = labelset.decode(gold, labels) or frozenset()
    p = labelset.decode(pred, labels) or frozenset()
    return set(p - g), set(g - p)  # false positives, false negatives


def analyse_errors(
    engine: Engine,
    spec: ProjectSpec,
    assessment: dict[str, Any],
    tests: Sequence[TestSet],
    *,
    student: str | None = None,
) -> ErrorAnalysis:
    """Group the items of ``tests`` by who was right, using the predictions stored with the
    assessment's evaluation run. ``student`` defaults to the assessment's best student."""
    from graduate.errors import NotReadyError

    name = student or assessment.get("best_student")
    students = assessment.get("students") or {}
    if not name or name not in students:
        raise NotReadyError(f"no evaluated student {name!r}; evaluated students: {sorted(students)} (run `graduate evaluate`)")
    run_id = students[name]["run_id"]
    labels = spec.task.labels
    stored = load_predictions(engine, assessment["run_id"])
    multi = spec.task.multi_label
    rows: list[dict[str, Any]] = []
    counts: dict[str, dict[str, int]] = {}
    per_label: dict[str, dict[str, dict[str, int]]] = {}
    for test in tests:
        errs = {lab: {"student_fp": 0, "student_fn": 0, "teacher_fp": 0, "teacher_fn": 0, "items": 0} for lab in labels}
        s_pred = stored.get((test.name, student_predictor(name, run_id)), {})
        t_pred = stored.get((test.name, spec.teacher.labeller), {})
        c = {g: 0 for g in GROUPS}
        c["items"], c["both_right"], c["student_right_no_teacher"] = len(test.examples), 0, 0
        for ex, gold in zip(test.examples, test.gold):
            if ex.id not in s_pred:
                continue
            s_label, probs = s_pred[ex.id]
            t_label = t_pred.get(ex.id, (None, None))[0]
            probs = probs or {}
            if multi:  # the least sure per-label decision (as the cascade judges it)
                conf = labelset.confidence(s_label, [probs.get(lab, 0.0) for lab in labels], labels) if probs else 0.0
                if t_label is not None:  # per-label errors on the items both answered
                    for who, pred in (("student", s_label), ("teacher", t_label)):
                        fp, fn = _label_errors(gold, pred, labels)
                        for lab in fp:
                            errs[lab][f"{who}_fp"] += 1
                        for lab in fn:
                            errs[lab][f"{who}_fn"] += 1
                    for lab in labels:
                        errs[lab]["items"] += 1
            else:
                conf = float(probs.get(s_label or "", 0.0))
            s_ok, t_ok = s_label == gold, (t_label == gold if t_label is not None else None)
            if s_ok and t_ok is not False:  # the student is right, the teacher too or not asked
                c["both_right" if t_ok else "student_right_no_teacher"] += 1
                continue
            if not s_ok and t_ok:
                group = "distillation_gap"
            elif not s_ok and t_ok is False:
                group = "both_wrong"
            elif s_ok and t_ok is False:
                group = "student_better"
            else:
                group = "student_wrong_no_teacher"
            c[group] += 1
            row = {
                "example_id": ex.id,
                "source": ex.source,
                "external_id": ex.external_id,
                "test_set": test.name,
                "text": ex.text,
                "gold": gold,
                "teacher_label": t_label,
                "student_label": s_label,
                "student_confidence": conf,
                "group": group,
                "reason": _set_reason(group, gold, t_label, s_label or "", conf, labels) if multi else _reason(group, gold, t_label, s_label or "", conf),
                "corrected_label": None,
                "reviewer": None,
                "note": None,
            }
            for lab in labels:
                row[f"p_{lab}"] = float(probs.get(lab, 0.0))
            rows.append(row)
        counts[test.name] = c
        if multi:
            for e in errs.values():
                e["gap"] = e["student_fp"] + e["student_fn"] - e["teacher_fp"] - e["teacher_fn"]
            per_label[test.name] = errs
    rows.sort(key=lambda r: (GROUPS.index(r["group"]), -r["student_confidence"]))

    worst: dict[str, list[dict[str, Any]]] = {}
    gaps: dict[str, list[dict[str, Any]]] = {}
    min_size = spec.evaluation.min_slice_size
    for test in tests:
        figs = (assessment["test_sets"].get(test.name) or {})
        s_figs = (figs.get("students") or {}).get(name) or {}
        t_figs = figs.get("teacher") or {}
        worst[test.name] = s_figs.get("worst_slices") or []
        t_slices = {(r["kind"], r["name"]): r for r in t_figs.get("slices") or []}
        rows_gap = []
        for r in s_figs.get("slices") or []:
            t = t_slices.get((r["kind"], r["name"]))
            if r["kind"] == "label" or t is None or r["accuracy"] is None or t.get("accuracy") is None or min(r["answered"], t["answered"]) < min_size:
                continue
            rows_gap.append({**r, "teacher_accuracy": t["accuracy"], "gap": t["accuracy"] - r["accuracy"]})
        rows_gap.sort(key=lambda r: -r["gap"])
        gaps[test.name] = [r for r in rows_gap if r["gap"] > 0][:5]

    analysis = ErrorAnalysis(name, run_id, [t.name for t in tests], labels, rows, counts, worst, gaps, per_label=per_label)
    analysis.limitations = limitations(spec, assessment, analysis)
    return analysis


def limitations(spec: ProjectSpec, assessment: dict[str, Any], analysis: ErrorAnalysis) -> list[str]:
    """Plain sentences: where the student falls short of the teacher, and by how much."""
    name = analysis.student
    teacher = spec.teacher.model
    pos = spec.task.positive
    binary = len(spec.task.labels) == 2
    # Label sets have no accuracy: their headline figure is micro-F1, as in the results table.
    multi = spec.task.kind == "multi_label"
    key = "micro_f1" if multi else "accuracy"
    fmt = (lambda x: f"{x:.3f}") if multi else _pct
    out: list[str] = []
    for ts in analysis.test_sets:
        figs = assessment["test_sets"].get(ts) or {}
        s = (figs.get("students") or {}).get(name) or {}
        t = figs.get("teacher") or {}
        c = analysis.counts.get(ts, {})
        if s.get(key) is None:
            continue
        ci = s.get("ci", {}).get(key)
        ci_text = f" ({100 * float(s.get('ci_level') or 0.95):g}% interval {fmt(ci[0])}–{fmt(ci[1])})" if ci else ""  # evaluation.confidence_level
        head = f"On {ts} ({figs.get('n')} items) {name} " + (f"reaches micro-F1 {fmt(s[key])}" if multi else f"is right on {fmt(s[key])}") + ci_text
        if t.get(key) is not None and t.get("answered"):
            diff = 100 * (s[key] - t[key])
            rel = "lower than" if diff < 0 else ("higher than" if diff > 0 else "the same as")
            teacher_fig = f"{fmt(t[key])} on the {t['answered']} it answered" if multi else f"on {fmt(t[key])} of the {t['answered']} it answered"
            out.append(f"{head}; the teacher ({teacher}) {teacher_fig}: {abs(diff):.1f} points {rel} the teacher.")
        else:
            out.append(f"{head}; the teacher has no answers there to compare with.")
        per = analysis.per_label.get(ts) or {}
        behind = [lab for lab in analysis.labels if lab in per and per[lab]["gap"] > 0]
        if behind:
            lab = max(behind, key=lambda lab: per[lab]["gap"])  # the first in the spec's order among equals
            e = per[lab]
            out.append(
                f"  It trails the teacher most on label '{lab}': it misses it on {e['student_fn']} items and wrongly adds it to {e['student_fp']} "
                f"(the teacher: {e['teacher_fn']} and {e['teacher_fp']}) of the {e['items']} both answered."
            )
        if binary and s.get("recall") is not None and t.get("recall") is not None and t.get("answered"):
            out.append(
                f"  It finds {_pct(s['recall'])} of the items gold marks '{pos}' (teacher: {_pct(t['recall'])}) and wrongly marks "
                f"{_pct(s.get('fpr'))} of the others '{pos}' (teacher: {_pct(t.get('fpr'))})."
            )
        if c.get("distillation_gap") or c.get("student_better") or c.get("both_wrong"):
            out.append(
                f"  The teacher is right and the student wrong on {c.get('distillation_gap', 0)} items; the student is right and the "
                f"teacher wrong on {c.get('student_better', 0)}; both are wrong on {c.get('both_wrong', 0)} (hard items or wrong gold labels)."
            )
        gap = analysis.gap_slices.get(ts) or []
        if gap:
            g = gap[0]
            out.append(
                f"  It trails the teacher most on '{g['name']}' ({g['answered']} items): {_pct(g['accuracy'])} right vs the teacher's "
                f"{_pct(g['teacher_accuracy'])} ({100 * g['gap']:.1f} points)."
            )
        worst = analysis.worst_slices.get(ts) or []
        if worst and worst[0].get("gap") is not None and worst[0]["gap"] < 0:
            w = worst[0]
            out.append(f"  Its weakest slice is '{w['name']}' ({w['answered']} items): {_pct(w['accuracy'])} right vs {_pct(s['accuracy'])} overall.")
        if s.get("ece") is not None and s["ece"] >= 0.05:
            out.append(f"  Its probabilities are off by {s['ece']:.2f} on average (expected calibration error): don't read them as exact odds.")
    bias = assessment.get("bias") or {}
    b = (bias.get("students") or {}).get(name)
    if b:
        pos = b.get("label") or pos  # label sets: the label whose false-positive rate the swap raised most
        line = (
            f"Swapping identity terms ({bias['original']} vs {bias['perturbed']}, {b['changed_pairs']} changed pairs) moves its "
            f"'{pos}' probability by {b['mean_abs_shift']:.3f} on average (at most {b['max_abs_shift']:.2f}) and flips {b['flipped']} answers."
            if b.get("mean_abs_shift") is not None
            else f"Swapping identity terms flips {b['flipped']} of its answers."
        )
        out.append(line)
        worst_term = next((tm for tm in b.get("terms", []) if tm["term"] == b.get("worst_term")), None)
        if worst_term and b.get("fpr_perturbed") is not None:
            out.append(
                f"  Non-{pos} comments that mention '{worst_term['term']}' are marked '{pos}' {_pct(worst_term['fpr_perturbed'])} of the time, "
                f"vs {_pct(b['fpr_perturbed'])} over all non-{pos} comments."
            )
            if worst_term.get("fpr_same_items_original") is not None:
                out.append(
                    f"  The same comments before '{worst_term['term']}' was swapped in: {_pct(worst_term['fpr_same_items_original'])}; "
                    f"the swap made {worst_term['became_fp']} of them '{pos}' and cleared {worst_term['stopped_fp']} "
                    f"(exact McNemar p = {worst_term['fpr_change_p']:.2f}): "
                    + (
                        "most of its gap to the overall rate is in which comments these are, not the term."
                        if worst_term["fpr_change"] <= (worst_term["fpr_perturbed"] - b["fpr_perturbed"]) / 2
                        else "the term itself causes most of its gap to the overall rate."
                    )
                )
        if bias.get("teacher_note"):
            out.append(f"  Note: {bias['teacher_note']}.")
    serving = (assessment.get("serving") or {}).get("students", {}).get(name) or {}
    tserv = (assessment.get("serving") or {}).get("teacher") or {}
    if serving.get("cost_per_1k") is not None and tserv.get("cost_per_1k"):
        ratio = tserv["cost_per_1k"] / serving["cost_per_1k"] if serving["cost_per_1k"] else None
        out.append(
            # Wall clock on this machine, every core available (the encoder uses them all for one item).
            f"In exchange it answers one item in {serving['latency_p50_ms']:.2f} ms (p99 {serving['latency_p99_ms']:.2f} ms) on this machine and costs "
            f"{_per_1k(serving['cost_per_1k'])} vs the teacher's {_per_1k(tserv['cost_per_1k'], bool(tserv.get('cost_estimated')))}"
            + (f": about {ratio:,.0f} times less." if ratio and ratio >= 1.5 else f": about {1 / ratio:,.1f} times more." if ratio and ratio < 1 else ".")
        )
    return out


def _per_1k(value: float, estimated: bool = False) -> str:
    text = format_usd_per_1k(value, estimated)
    return text if "per 1M" in text else text.replace(" (est.)", "") + " per 1,000 items" + (" (estimated)" if estimated else "")
