"""The student ladder: train kinds from the smallest up and stop climbing once the criteria hold.

The criteria are gates (``graduate.evaluate.criteria``): the spec's ``gates:`` or the ones given
on the command line. The ladder judges each rung as ``student`` on the figures it measures per
test set (quality, agreement, cost per 1,000 items); gates it cannot judge from those (single-item
latency percentiles, bias, or a gate naming another student) are listed as left to
``graduate evaluate`` and do not stop the climb. Each rung is a tracked train run (an identical
earlier run is reused, so an interrupted climb resumes where it stopped).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graduate.errors import SpecError
from graduate.evaluate.criteria import Gate, GateResult, GateSyntaxError, check_gate, judge, parse_gate
from graduate.pipeline.progress import ProgressFn, no_progress
from graduate.pipeline.scoring import evaluation_run
from graduate.spec import StudentSpec
from graduate.students.registry import LADDER

if TYPE_CHECKING:
    from graduate.pipeline.project import Project

# Metrics the ladder measures per test set for a rung (the rest are for `graduate evaluate`).
_LADDER_METRICS = {
    "accuracy", "precision", "recall", "f1", "roc_auc", "fpr", "tpr", "agreement_with_teacher", "kappa_with_teacher", "cost_per_1k",
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

    def cost_per_1k(self) -> float | None:
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


def ladder_gates(project: "Project", given: list[str] | None) -> tuple[list[Gate], list[str]]:
    """The gates to climb by (command-line ones replace the spec's) and those the ladder leaves out."""
    spec = project.spec
    if given:
        purposes = {t.name: getattr(t, "purpose", "quality") for t in spec.test_sets}
        gates = []
        for text in given:
            try:
                gate = parse_gate(text)
                check_gate(gate, test_sets=purposes, students=[s.label for s in spec.students], has_bias_pair=False, labels=list(spec.task.labels))
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

    chosen = kinds or list(LADDER)
    unknown = [k for k in chosen if k not in LADDER]
    if unknown:
        raise SpecError(f"unknown student kinds {unknown}; known kinds, smallest first: {LADDER}", field="--student/--rungs")
    left_out: list[str] = []
    if kinds is None and not accelerator_present():
        left_out = [k for k in chosen if student_class(k).needs_accelerator]
        chosen = [k for k in chosen if k not in left_out]
    by_kind = {s.kind: s for s in project.spec.students}
    order = sorted(chosen, key=LADDER.index)
    return [by_kind.get(k) or StudentSpec(kind=k) for k in order], left_out


def _lookup(rung: Rung, teacher: dict[str, Any], teacher_cost: float | None):
    def lookup(operand, _student: str, test_set: str | None) -> float | None:
        metric = "cost_per_1k_usd" if operand.metric == "cost_per_1k" else operand.metric
        if operand.subject == "teacher":
            if operand.metric == "cost_per_1k":
                return teacher_cost
            return operand.value(teacher.get(test_set) or {}) if test_set else None
        if test_set is None:
            return rung.cost_per_1k() if operand.metric == "cost_per_1k" else None
        figs = rung.tests.get(test_set, {})
        return operand.value(figs) if operand.label is not None else figs.get(metric)

    return lookup


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
    project.import_logs(progress)
    project.load_data(progress)
    progress("build training set", 0, 1)
    dataset = project.build_training_set()
    progress("build training set", 1, 1)
    rungs: list[Rung] = []
    stopped: str | None = None
    with evaluation_run(project, "ladder", dataset.content_hash) as board:
        for i, sspec in enumerate(rungs_spec):
            progress("ladder", i, len(rungs_spec))
            tr = project.train(sspec, dataset, progress=progress)
            tests = board.add(tr.name, tr.run_id, tr.student, progress=progress)
            size = sum(f.stat().st_size for f in tr.directory.rglob("*") if f.is_file())
            rung = Rung(tr.name, sspec.kind, tr.run_id, tr.reused, tr.fit_seconds, size, tests, base_bytes=int(tr.student.base_model_bytes))
            teacher = {name: e["teacher"] for name, e in board.entries.items()}
            lookup = _lookup(rung, teacher, board.teacher_cost.per_1k_usd)
            for gate in usable:
                rung.gates += judge(gate, lookup, best_student=tr.name, quality_sets=board.quality_sets)
            rung.met = bool(usable) and all(g.passed for g in rung.gates)
            rungs.append(rung)
            if rung.met:
                stopped = rung.name
                break
        progress("ladder", len(rungs), len(rungs_spec))
        board.close({"ladder": [r.name for r in rungs], "stopped_at": stopped})
    cost = board.teacher_cost
    teacher = {name: e["teacher"] for name, e in board.entries.items()}
    return LadderResult(
        rungs,
        [g.text for g in usable],
        skipped,
        stopped,
        board.run_id,
        {"labeller": project.spec.teacher.labeller, "tests": teacher, "cost_per_1k_usd": cost.per_1k_usd, "cost_estimated": cost.estimated},
        default_gate=default_gate,
        left_out=left_out,
        single=kinds is not None and len(kinds) == 1,
    )
