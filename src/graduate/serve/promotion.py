"""Promotion of a retrained student while the server runs: shadow, then canary, then full.

A candidate (another trained run) is loaded beside the served student. In the shadow stage it
scores every request but answers none; in the canary stage it answers ``canary_share`` of them.
Each stage is judged once ``min_items`` items were compared: the candidate must agree with what
was served (the current student's answer, or the teacher's) at least ``min_agreement`` of the time,
make no error, and stay under ``max_p99_ms``. A failed stage rolls back (the candidate is dropped,
nothing changes for clients); the canary passing makes the candidate the served student. The
swap is one assignment: requests in flight finish on the predictor they started with, which is
closed only after the last of them.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from graduate.spec import PromoteSpec

STAGES = ("shadow", "canary")


@dataclass
class Candidate:
    name: str  # NAME:RUN_ID, as the service names the served student
    run_id: str
    predictor: Any  # graduate.serve.predictor.Predictor, started
    decide: Callable[[np.ndarray], list[str]] | None


@dataclass
class Promotion:
    candidate: Candidate
    spec: PromoteSpec
    replaces: str
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    stage: str = "shadow"
    outcome: str | None = None  # promoted | rolled_back
    reason: str | None = None
    compared: int = 0
    agreed: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)

    @property
    def active(self) -> bool:
        return self.outcome is None

    def answers(self) -> bool:
        """Whether the candidate answers this request (canary stage: a sampled share)."""
        return self.stage == "canary" and self.rng.random() < self.spec.canary_share

    def failed(self, error: str) -> None:
        self.errors += 1
        self._close_stage(False, f"the candidate failed on a request: {error}")

    def observe(self, agree: list[bool], latency_ms: float) -> str | None:
        """Count a request's comparisons; returns "promote" or "rollback" when the stage is judged."""
        if not self.active:
            return None
        self.compared += len(agree)
        self.agreed += sum(agree)
        self.latencies_ms.append(latency_ms)
        if self.compared < self.spec.min_items:
            return None
        agreement = self.agreed / self.compared
        p99 = float(np.percentile(self.latencies_ms, 99))
        if agreement < self.spec.min_agreement:
            return self._close_stage(False, f"{self.stage}: agreement {agreement:.3f} with the answers served is under promote.min_agreement {self.spec.min_agreement}")
        if self.spec.max_p99_ms is not None and p99 > self.spec.max_p99_ms:
            return self._close_stage(False, f"{self.stage}: p99 latency {p99:.1f} ms is over promote.max_p99_ms {self.spec.max_p99_ms}")
        return self._close_stage(True, None)

    def _close_stage(self, passed: bool, reason: str | None) -> str:
        agreement = self.agreed / self.compared if self.compared else None
        p99 = float(np.percentile(self.latencies_ms, 99)) if self.latencies_ms else None
        self.history.append({"stage": self.stage, "compared": self.compared, "agreement": agreement, "p99_ms": p99, "errors": self.errors, "passed": passed})
        if not passed:
            self.outcome, self.reason = "rolled_back", reason
            return "rollback"
        nxt = STAGES.index(self.stage) + 1
        if nxt == len(STAGES):
            self.stage, self.outcome = "full", "promoted"
            return "promote"
        self.stage = STAGES[nxt]
        self.compared, self.agreed, self.latencies_ms = 0, 0, []
        return "next"

    def as_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate.name, "replaces": self.replaces, "stage": self.stage, "outcome": self.outcome, "reason": self.reason,
            "compared": self.compared, "agreement": (self.agreed / self.compared) if self.compared else None, "history": self.history,
            "started_at": self.started_at,
        }
