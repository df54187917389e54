"""Judging the spec's gates on measured figures. The gate language itself (grammar, metrics, the
check against the spec) is ``graduate.spec.gates``; its names are re-exported here.

``student`` is the best student (highest mean accuracy over the quality test sets);
``student[NAME]`` names one. A per-test-set metric without ``on`` is judged on every quality test
set, and each must pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from graduate.spec.gates import _OPS, METRICS, Gate, GateSyntaxError, MetricInfo, Operand, Scope, check_gate, parse_gate

__all__ = ["METRICS", "Gate", "GateResult", "GateSyntaxError", "MetricInfo", "Operand", "Scope", "check_gate", "judge", "parse_gate"]


@dataclass
class GateResult:
    gate: str
    test_set: str | None
    student: str
    passed: bool
    left: float | None
    right: float | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# (operand, resolved student name, test set or None) -> the figure, or None if not measured
Lookup = Callable[[Operand, str, "str | None"], "float | None"]


def _fmt(x: float) -> str:
    """Four significant digits, without scientific notation down to 1e-9 (0.00000195, not 1.950e-06);
    below it, scientific notation (a gate's 5e-324 was 324 digits wide in the gates table)."""
    import numpy as np

    if abs(x) >= 1e-3 or x == 0 or abs(x) < 1e-9:
        return f"{x:.4g}"
    return np.format_float_positional(x, precision=4, unique=False, fractional=False, trim="-")


def judge(gate: Gate, lookup: Lookup, *, best_student: str, quality_sets: list[str]) -> list[GateResult]:
    """Judge a gate on the figures ``lookup`` gives: one result per test set it applies to."""
    # the first student the gate names, left to right (a set's order would change from run to run)
    judged = next((o.student for o in gate.operands() if o.subject == "student" and o.student is not None), best_student)
    if gate.scope == "test":
        sets: list[str | None] = [gate.test_set] if gate.test_set else list(quality_sets)
    else:
        sets = [None]
    out = []
    for ts in sets:
        left = lookup(gate.left, gate.left.student or best_student, ts)
        if gate.right is not None:
            ref = lookup(gate.right, gate.right.student or best_student, ts)
            right = None if ref is None else gate.factor * ref + gate.offset
            expr = str(gate.right) + (f" ({_fmt(ref)})" if ref is not None and (gate.factor != 1.0 or gate.offset) else "")
            if gate.factor != 1.0:
                expr = f"{_fmt(gate.factor)} x {expr}"
            if gate.offset:
                expr += f" {'+' if gate.offset > 0 else '-'} {_fmt(abs(gate.offset))}"
            right_text = f"{expr} = {_fmt(right)}" if right is not None else f"{expr} = not measured"
        else:
            right = gate.threshold
            right_text = _fmt(right) if right is not None else "?"
        missing = [str(o) for o, v in ((gate.left, left), (gate.right, right)) if o is not None and (v is None or math.isnan(v))]
        if missing:
            where = f" on {ts}" if ts else ""
            out.append(GateResult(gate.text, ts, judged, False, left, right, f"not measured{where}: {', '.join(missing)}"))
            continue
        passed = _OPS[gate.op](left, right)  # type: ignore[arg-type]
        out.append(GateResult(gate.text, ts, judged, bool(passed), left, right, f"{gate.left} = {_fmt(left)} {gate.op} {right_text}"))  # type: ignore[arg-type]
    return out
