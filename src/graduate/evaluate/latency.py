"""Latency of a student: single-item predictions timed one by one (what one caller waits) and
batch predictions (time per item when requests are batched), as percentiles."""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from graduate.students.base import Student


def _percentiles(ms: list[float]) -> dict[str, float | None]:
    if not ms:
        return {"p50": None, "p95": None, "p99": None}
    p50, p95, p99 = np.percentile(np.asarray(ms), [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99)}


def measure_latency(student: Student, texts: Sequence[str], *, items: int = 200, batch_size: int = 64, warmup: int = 5) -> dict[str, Any]:
    """Time ``items`` single-item predictions (after ``warmup`` untimed ones) and batches of
    ``batch_size`` over the same texts (cycled to at least 4 batches). Wall-clock milliseconds."""
    if not texts:
        return {"items": 0, "single_ms": _percentiles([]), "batch_ms_per_item": _percentiles([]), "batch_size": batch_size}
    sample = [texts[i % len(texts)] for i in range(max(items, 1))]
    for t in sample[:warmup]:
        student.predict_proba([t])
    single: list[float] = []
    for t in sample:
        t0 = time.perf_counter()
        student.predict_proba([t])
        single.append(1000 * (time.perf_counter() - t0))
    pool = sample * max(1, -(-4 * batch_size // len(sample)))
    per_item: list[float] = []
    for start in range(0, len(pool) - batch_size + 1, batch_size):
        chunk = pool[start : start + batch_size]
        t0 = time.perf_counter()
        student.predict_proba(chunk)
        per_item.append(1000 * (time.perf_counter() - t0) / len(chunk))
    return {"items": len(sample), "single_ms": _percentiles(single), "batch_ms_per_item": _percentiles(per_item), "batch_size": batch_size}


def teacher_latency(latencies_ms: Sequence[float | None]) -> dict[str, Any]:
    """Percentiles of the teacher's recorded call latencies (live calls only: imported logs carry none)."""
    ms = [float(x) for x in latencies_ms if x is not None]
    return {"items": len(ms), "single_ms": _percentiles(ms)}
