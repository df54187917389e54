"""Cost per 1,000 items: the teacher's from tokens x prices, the student's from CPU time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from graduate.store.calls import CallRow


@dataclass
class CostFigure:
    per_1k_usd: float | None
    estimated: bool
    basis: str


def teacher_cost_per_1k(calls: Iterable[CallRow]) -> CostFigure:
    """Mean cost of the calls that answered, times 1,000. Estimated when any call lacked usage."""
    rows = [c for c in calls if c.cost_usd is not None]
    if not rows:
        return CostFigure(None, False, "no priced calls (add the model to prices: in graduate.yaml)")
    estimated = any(c.tokens_estimated for c in rows)
    tin = sum(c.input_tokens or 0 for c in rows) / len(rows)
    tout = sum(c.output_tokens or 0 for c in rows) / len(rows)
    basis = (
        f"{len(rows)} calls, mean {tin:.0f} input + {tout:.0f} output tokens"
        + (" (estimated offline: ~4 characters per token + chat overhead)" if estimated else " (reported usage)")
    )
    return CostFigure(1000 * sum(c.cost_usd or 0.0 for c in rows) / len(rows), estimated, basis)


def student_cost_per_1k(cpu_seconds: float, items: int, core_hour_usd: float) -> CostFigure:
    """Measured CPU seconds per item x the price of a core-hour, times 1,000."""
    if items == 0:
        return CostFigure(None, False, "no items")
    per_item = cpu_seconds / items
    return CostFigure(
        1000 * per_item * core_hour_usd / 3600.0,
        False,
        f"{per_item * 1000:.3f} CPU-ms per item measured x ${core_hour_usd}/core-hour",
    )
