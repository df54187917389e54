"""Promotion of a retrained student while the server runs: shadow, then canary, then full.

A candidate (another trained run) is loaded beside the served student. In the shadow stage it
scores every request but answers none; in the canary stage it answers ``canary_share`` of them.
Each stage is judged once ``min_items`` items were compared: the candidate must agree with what
was served (the current student's answer, or the teacher's) at least ``min_agreement`` of the time,
make no error, stay under ``max_p99_ms``, and hold the monitor's label check: the shares of the
candidate's answers may not drift from the shares of the answers served over the same requests by
more than ``max_label_psi`` (default: ``monitor.max_label_psi``; multi-label: the worst label's PSI,
as ``graduate monitor`` judges traffic). A failed stage rolls back (the candidate is dropped,
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

from graduate.data.shift import label_set_shift, label_shift
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
    labels: list[str] = field(default_factory=list)  # the task's labels (for the label-share check)
    multi_label: bool = False
    max_label_psi: float | None = None  # None: no label-share check
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    stage: str = "shadow"
    outcome: str | None = None  # promoted | rolled_back
    reason: str | None = None
    compared: int = 0
    agreed: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    served_labels: list[str] = field(default_factory=list)  # this stage's answers served, and the candidate's
    candidate_labels: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)

    @property
    def active(self) -> bool:
        return self.outcome is None

    def answers(self) -> bool:
        """Whether the candidate answers this request (canary stage: a sampled share)."""
        return self.stage == "canary" and self.rng.random() < self.spec.canary_share

    def failed(self, error: str) -> str | None:
        """A request the candidate failed on: "rollback", or None once the promotion was judged (a
        request that scored it beside the one that promoted it must not undo the swap)."""
        if not self.active:
            return None
        self.errors += 1
        return self._close_stage(False, f"the candidate failed on a request: {error}")

    def label_psi(self) -> dict[str, Any] | None:
        """The label-share figures of this stage: candidate's answers vs the answers served."""
        if not self.served_labels or not self.labels:
            return None
        shift = label_set_shift if self.multi_label else label_shift
        return shift(self.served_labels, self.candidate_labels, self.labels)

    def observe(self, served: list[str], candidate: list[str], latency_ms: float) -> str | None:
        """Count a request's comparisons (the label served for each item, and the candidate's);
        returns "promote" or "rollback" when the stage is judged, "next" when the next stage starts."""
        if not self.active:
            return None
        self.compared += len(served)
        self.agreed += sum(a == b for a, b in zip(served, candidate))
        self.served_labels.extend(served)
        self.candidate_labels.extend(candidate)
        self.latencies_ms.append(latency_ms)
        if self.compared < self.spec.min_items:
            return None
        agreement = self.agreed / self.compared
        p99 = float(np.percentile(self.latencies_ms, 99))
        if agreement < self.spec.min_agreement:
            return self._close_stage(False, f"{self.stage}: agreement {agreement:.3f} with the answers served is under promote.min_agreement {self.spec.min_agreement}")
        if self.spec.max_p99_ms is not None and p99 > self.spec.max_p99_ms:
            return self._close_stage(False, f"{self.stage}: p99 latency {p99:.1f} ms is over promote.max_p99_ms {self.spec.max_p99_ms}")
        shift = self.label_psi()
        if self.max_label_psi is not None and shift is not None and shift["psi"] is not None and shift["psi"] > self.max_label_psi:
            worst = f" (worst label {shift['worst_label']!r})" if shift.get("worst_label") else ""
            return self._close_stage(
                False, f"{self.stage}: the candidate's label shares drift from the answers served, PSI {shift['psi']:.3f}{worst} over max_label_psi {self.max_label_psi}"
            )
        return self._close_stage(True, None)

    def _close_stage(self, passed: bool, reason: str | None) -> str:
        agreement = self.agreed / self.compared if self.compared else None
        p99 = float(np.percentile(self.latencies_ms, 99)) if self.latencies_ms else None
        shift = self.label_psi()
        self.history.append({
            "stage": self.stage, "compared": self.compared, "agreement": agreement, "p99_ms": p99, "errors": self.errors, "passed": passed,
            "label_psi": shift["psi"] if shift else None, "served_shares": shift["training"] if shift else None, "candidate_shares": shift["traffic"] if shift else None,
        })  # fmt: skip
        if not passed:
            self.outcome, self.reason = "rolled_back", reason
            return "rollback"
        nxt = STAGES.index(self.stage) + 1
        if nxt == len(STAGES):
            self.stage, self.outcome = "full", "promoted"
            return "promote"
        self.stage = STAGES[nxt]
        self.compared, self.agreed, self.latencies_ms, self.served_labels, self.candidate_labels = 0, 0, [], [], []
        return "next"

    def as_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate.name, "replaces": self.replaces, "stage": self.stage, "outcome": self.outcome, "reason": self.reason,
            "compared": self.compared, "agreement": (self.agreed / self.compared) if self.compared else None, "history": self.history,
            "started_at": self.started_at,
        }
