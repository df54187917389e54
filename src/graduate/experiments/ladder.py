"""The student ladder: train kinds from the smallest up and stop climbing once the criteria hold.

The criteria are gates (``graduate.evaluate.criteria``): the spec's ``gates:`` or the ones given
on the command line. The climb is a choice, so it is judged on validation data, never on a test
set: a share of the training set's own items (``model_selection``) is held out from every rung,
and each gate is judged on the held-out items that carry a gold label, student against gold and
teacher against gold (quality, agreement, cost per 1,000 items), whichever test set the gate
names. The rungs are also scored on every test set, which only reports. A training set without
``model_selection.min_items`` gold-labelled held-out items cannot judge there: the climb is then
judged on the test sets as before, and the result says so. One named student (``--student``) is
not a climb: it trains on everything and is judged on the test sets, as ``graduate evaluate``
does. Gates the ladder cannot judge (single-item latency percentiles, bias, a gate naming another
student) are listed as left to ``graduate evaluate`` and do not stop the climb. Each rung is a
tracked train run (an identical earlier run is reused, so an interrupted climb resumes where it
stopped).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graduate.data.build import Dataset, save_dataset
from graduate.data.examples import labels_for
from graduate.data.teacher_labels import teacher_labels
from graduate.data.validation import carve_validation
from graduate.errors import SpecError
from graduate.evaluate.criteria import Gate, GateResult, GateSyntaxError, check_gate, judge, parse_gate
from graduate.evaluate.evaluation import student_metrics, test_set_entry
from graduate.evaluate.testsets import TestSet, gold_test_set
from graduate.pipeline.progress import ProgressFn, no_progress
from graduate.pipeline.scoring import evaluation_run, predict_timed
from graduate.spec import StudentSpec
from graduate.students.registry import LADDER

if TYPE_CHECKING:
    from graduate.pipeline.project import Project

# Metrics the ladder measures per test set for a rung (the rest are for `graduate evaluate`).
_LADDER_METRICS = {
    "accuracy", "precision", "recall", "f1", "roc_auc", "fpr", "tpr", "agreement_with_teacher", "kappa_with_teacher", "cost_per_1k",
    "macro_precision", "macro_recall", "macro_f1",
    # multi-label set figures
    "micro_f1", "micro_precision", "micro_recall", "exact_match", "hamming_loss",
}


@dataclass
class Rung:
    name: str
    kind: str
    run_id: str
    reused: bool
    fit_seconds: float
    size_bytes: int
    tests: dict[str, dict[str, Any]]
    gates: list[GateResult] = field(default_factory=list)
    met: bool = False
    base_bytes: int = 0  # a shared base model it needs beside its own files (embed-logreg, lora-llm)
    validation: dict[str, Any] | None = None  # its figures on the held-out gold-labelled items (what the climb judged)

    def cost_per_1k(self) -> float | None:
        if self.validation and self.validation.get("cost_per_1k_usd") is not None:
            return self.validation["cost_per_1k_usd"]
        costs = [m.get("cost_per_1k_usd") for m in self.tests.values() if m.get("cost_per_1k_usd") is not None]
        return sum(costs) / len(costs) if costs else None

    def latency_ms(self) -> float | None:
        lat = [m.get("latency_ms_per_item") for m in self.tests.values() if m.get("latency_ms_per_item") is not None]
        return sum(lat) / len(lat) if lat else None


# Without gates the ladder still stops somewhere sensible: at the first rung as good as the
# teacher on every quality test set (within 2%), instead of climbing to an LLM fine-tune.
DEFAULT_GATE = "student.accuracy >= 0.98 * teacher.accuracy"


@dataclass
class LadderResult:
    rungs: list[Rung]
    gates: list[str]
    skipped_gates: list[str]
    stopped_at: str | None  # the first rung that met every judged gate
    evaluation_run_id: str
    teacher: dict[str, Any]
    default_gate: bool = False  # no gates were given: DEFAULT_GATE was used
    left_out: list[str] = field(default_factory=list)  # kinds skipped: they need an accelerator
    single: bool = False  # one student (--student), not a climb
    judged_on: str = "test sets"  # "validation": the held-out gold-labelled training items; "test sets": the quality test sets
    judged_note: str = ""  # why, when a climb is judged on the test sets
    validation_teacher: dict[str, Any] | None = None  # the teacher's figures on the held-out items
    validation_items: int = 0
    metric: str = "accuracy"  # the headline figure per rung: accuracy, or micro_f1 for a multi-label task


def ladder_gates(project: "Project", given: list[str] | None) -> tuple[list[Gate], list[str]]:
    """The gates to climb by (command-line ones replace the spec's) and those the ladder leaves out."""
    spec = project.spec
    if given:
        purposes = {t.name: getattr(t, "purpose", "quality") for t in spec.test_sets}
        gates = []
        for text in given:
            try:
                gate = parse_gate(text)
                check_gate(  # checked as the spec's own gates are; those the ladder cannot judge are left out below
                    gate, test_sets=purposes, students=[s.label for s in spec.students], has_bias_pair=spec.evaluation.bias_pair is not None,
                    labels=list(spec.task.labels), multi_label=spec.task.multi_label, has_identity_terms=bool(spec.evaluation.identity_terms),
                )
            except (GateSyntaxError, ValueError) as exc:
                raise SpecError(str(exc), field="--until") from None
            gates.append(gate)
    else:
        gates = list(getattr(spec, "parsed_gates", []))
    if not gates:
        gates = [parse_gate(DEFAULT_GATE)]
    usable = [g for g in gates if all(o.metric in _LADDER_METRICS and o.student is None for o in g.operands())]
    skipped = [g.text for g in gates if g not in usable]
    return usable, skipped


def accelerator_present() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def ladder_rungs(project: "Project", kinds: list[str] | None) -> tuple[list[StudentSpec], list[str]]:
    """One student per kind, smallest first (registry order); the spec's params for a kind it
    lists. Without ``kinds``, kinds that need an accelerator are left out on a CPU-only machine
    (returned second)."""
    from graduate.students.registry import student_class

    if kinds is not None and not kinds:  # `--rungs ,` climbed every kind, lora-llm on a CPU included
        raise SpecError(f"no student kinds given; name them comma-separated, smallest first: {LADDER}", field="--rungs")
    chosen = kinds if kinds is not None else list(LADDER)
    unknown = [k for k in chosen if k not in LADDER]
    if unknown:
        raise SpecError(f"unknown student kinds {unknown}; known kinds, smallest first: {LADDER}", field="--student/--rungs")
    left_out: list[str] = []
    if kinds is None and not accelerator_present():
        left_out = [k for k in chosen if student_class(k).needs_accelerator]
        chosen = [k for k in chosen if k not in left_out]
    by_kind = {s.kind: s for s in project.spec.students}
    order = sorted(set(chosen), key=LADDER.index)  # a kind named twice is one rung
    return [by_kind.get(k) or StudentSpec(kind=k) for k in order], left_out


def _lookup(figures: dict[str, dict[str, Any]], teacher: dict[str, Any], cost: float | None, teacher_cost: float | None):
    """Gate figures: ``figures`` and ``teacher`` map a judged set to the rung's and the teacher's figures."""

    def lookup(operand, _student: str, test_set: str | None) -> float | None:
        metric = "cost_per_1k_usd" if operand.metric == "cost_per_1k" else operand.metric
        if operand.subject == "teacher":
            if operand.metric == "cost_per_1k":
                return teacher_cost
            return operand.value(teacher.get(test_set) or {}) if test_set else None
        if test_set is None:
            return cost if operand.metric == "cost_per_1k" else None
        figs = figures.get(test_set, {})
        return operand.value(figs) if operand.label is not None else figs.get(metric)

    return lookup


VALIDATION = "validation"


def validation_test_set(project: "Project", validation: Dataset) -> TestSet:
    """The held-out training items that carry a gold label (else a reviewer's label: the review
    queue's import), as a test set named ``validation``."""
    ids = [ex.id for ex in validation.examples]
    gold = labels_for(project.engine, ids, kind="human")
    gold.update({i: g for i, g in labels_for(project.engine, ids, kind="gold").items() if g is not None})
    return gold_test_set(VALIDATION, validation.examples, gold)


def climb_ladder(
    project: "Project",
    *,
    kinds: list[str] | None = None,
    gates: list[str] | None = None,
    progress: ProgressFn | None = None,
) -> LadderResult:
    """Train and score each rung in turn; stop after the first whose every judged gate passes."""
    progress = progress or no_progress
    rungs_spec, left_out = ladder_rungs(project, kinds)
    default_gate = not gates and not getattr(project.spec, "parsed_gates", [])
    usable, skipped = ladder_gates(project, gates)
    single = kinds is not None and len(kinds) == 1
    spec = project.spec
    project.import_logs(progress)
    project.load_data(progress)
    progress("build training set", 0, 1)
    dataset = project.build_training_set()
    # A climb chooses a rung: it is judged on held-out training items with gold, never on a test set.
    train_on, held_out, judge_set, note = dataset, None, None, ""
    if not single:
        split = carve_validation(project.engine, spec, dataset, compare=True)
        if split.validation is None:
            note = f"nothing could be held out of the training set ({split.report['reason']})"
        else:
            candidate = validation_test_set(project, split.validation)
            if len(candidate.examples) >= spec.model_selection.min_items:
                train_on, held_out, judge_set = split.train, split.validation, candidate
                train_on.id = save_dataset(project.engine, train_on)
            else:
                note = (
                    f"{len(candidate.examples)} of the {len(split.validation.examples)} held-out training items carry a gold or reviewed label, under "
                    f"model_selection.min_items ({spec.model_selection.min_items}); label a sample of the pool by hand "
                    "(`graduate data review` imports it) to climb on validation data"
                )
    progress("build training set", 1, 1)
    if judge_set is not None:
        judged = [dataclasses.replace(g, test_set=None) for g in usable]  # every gate, on the held-out items
        val_answers = teacher_labels(project.engine, spec.task, spec.teacher, judge_set.examples)
        val_entry = test_set_entry(spec, judge_set, val_answers)
    else:
        judged = usable
    rungs: list[Rung] = []
    stopped: str | None = None
    with evaluation_run(project, "ladder", dataset.content_hash) as board:
        for i, sspec in enumerate(rungs_spec):
            progress("ladder", i, len(rungs_spec))
            tr = project.train(sspec, train_on, progress=progress)
            tests = board.add(tr.name, tr.run_id, tr.student, progress=progress, validation=held_out)
            size = sum(f.stat().st_size for f in tr.directory.rglob("*") if f.is_file())
            rung = Rung(tr.name, sspec.kind, tr.run_id, tr.reused, tr.fit_seconds, size, tests, base_bytes=int(tr.student.base_model_bytes))
            if judge_set is not None:
                preds = predict_timed(tr.student, [ex.text for ex in judge_set.examples])
                rung.validation = student_metrics(spec.task, judge_set, preds, val_answers, spec.serving.cpu_core_hour_usd, evaluation=spec.evaluation, seed=spec.seed)
                lookup = _lookup({VALIDATION: rung.validation}, {VALIDATION: val_entry["teacher"]}, rung.cost_per_1k(), board.teacher_cost.per_1k_usd)
                quality_sets = [VALIDATION]
            else:
                teacher = {name: e["teacher"] for name, e in board.entries.items()}
                lookup = _lookup(rung.tests, teacher, rung.cost_per_1k(), board.teacher_cost.per_1k_usd)
                quality_sets = board.quality_sets
            for gate in judged:
                rung.gates += judge(gate, lookup, best_student=tr.name, quality_sets=quality_sets)
            rung.met = bool(judged) and all(g.passed for g in rung.gates)
            rungs.append(rung)
            if rung.met:
                stopped = rung.name
                break
        progress("ladder", len(rungs), len(rungs_spec))
        judged_on = VALIDATION if judge_set is not None else "test sets"
        board.close(
            {
                "ladder": [r.name for r in rungs],
                "stopped_at": stopped,
                "judged_on": judged_on,
                "judged_note": note,
                "validation": {r.name: r.validation for r in rungs} if judge_set is not None else None,
            }
        )
    cost = board.teacher_cost
    teacher = {name: e["teacher"] for name, e in board.entries.items()}
    return LadderResult(
        rungs,
        [g.text for g in usable],
        skipped,
        stopped,
        board.run_id,
        {"labeller": spec.teacher.labeller, "tests": teacher, "cost_per_1k_usd": cost.per_1k_usd, "cost_estimated": cost.estimated},
        default_gate=default_gate,
        left_out=left_out,
        single=single,
        judged_on=judged_on,
        judged_note=note,
        validation_teacher=val_entry["teacher"] if judge_set is not None else None,
        validation_items=len(judge_set.examples) if judge_set is not None else 0,
        metric="micro_f1" if spec.task.multi_label else "accuracy",
    )
