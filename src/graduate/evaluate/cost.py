"""Cost per 1,000 items: the teacher's from tokens x prices, the student's from CPU time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from graduate.spec import ProjectSpec
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
        + (" (estimated offline: ~4 ASCII characters per token, a token per other character, + chat overhead)" if estimated else " (reported usage)")
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


def local_teacher_cost_per_1k(calls: Iterable[CallRow], *, threads: int, core_hour_usd: float) -> CostFigure:
    """A local model costs the CPU it runs on: measured wall time per call x the threads the
    server uses x the price of a core-hour. An estimate (the server's own CPU time is not measured
    per call, and a busy machine stretches wall time), so it is marked as one."""
    timed = [c.latency_ms for c in calls if c.status == "ok" and c.latency_ms]
    if not timed:
        return CostFigure(None, True, "local model: no timed calls yet (recorded logs carry no timings)")
    seconds = sum(timed) / len(timed) / 1000.0
    return CostFigure(
        1000 * seconds * threads * core_hour_usd / 3600.0,
        True,
        f"local model: {len(timed)} calls, mean {seconds:.2f} s wall x {threads} threads x ${core_hour_usd}/core-hour (estimate: CPU time, not a price list)",
    )


def teacher_cost(spec: ProjectSpec, calls: Iterable[CallRow]) -> CostFigure:
    """The teacher's cost per 1,000 items: tokens x prices, or CPU time for a local model."""
    calls = list(calls)
    if spec.teacher.kind == "local":
        import os

        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        threads = spec.teacher.local.threads or cores
        return local_teacher_cost_per_1k(calls, threads=threads, core_hour_usd=spec.serving.cpu_core_hour_usd)
    return teacher_cost_per_1k(calls)


def format_usd_per_1k(value: float | None, estimated: bool = False) -> str:
    """A cost per 1,000 items in units a person reads at a glance: dollars with four decimals
    down to $0.0001, below that per million items (`$0.0018 per 1M`), and below a hundredth of a
    cent per million `< $0.0001 per 1M`; never scientific notation."""
    if value is None:
        return "–"
    if value == 0:
        text = "$0"
    elif value >= 0.0001:
        text = f"${value:,.4f}"
    elif value * 1000 >= 0.0001:
        text = f"${value * 1000:.4f} per 1M"
    else:
        text = "< $0.0001 per 1M"
    return text + (" (est.)" if estimated else "")
