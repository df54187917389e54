"""Who answers an item: one small strategy per routing mode, chosen from an explicit registry.

A strategy sees the student's confidence (its top probability) and decides the route; the service
(``serve.service``) does the asking. Sampling draws come from a seeded generator, so a run with the
same seed and the same request order routes the same way.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Literal, Protocol

from graduate.spec import ServeSpec

Route = Literal["student", "teacher"]


@dataclass(frozen=True)
class Decision:
    route: Route
    reason: str
    shadow: bool = False  # also ask the teacher, in the background, to compare


class Strategy(Protocol):
    mode: str
    needs_teacher: bool

    def decide(self, confidence: float) -> Decision: ...


class StudentOnly:
    mode = "student"
    needs_teacher = False

    def decide(self, confidence: float) -> Decision:
        return Decision("student", "student")


class Cascade:
    mode = "cascade"
    needs_teacher = True

    def __init__(self, threshold: float):
        self.threshold = threshold

    def decide(self, confidence: float) -> Decision:
        if confidence >= self.threshold:
            return Decision("student", "confident")
        return Decision("teacher", "low_confidence")


class Shadow:
    mode = "shadow"
    needs_teacher = True

    def __init__(self, rate: float, rng: random.Random):
        self.rate = rate
        self.rng = rng

    def decide(self, confidence: float) -> Decision:
        if self.rng.random() < self.rate:
            return Decision("student", "shadow", shadow=True)
        return Decision("student", "student")


class Canary:
    mode = "canary"
    needs_teacher = True

    def __init__(self, share: float, rng: random.Random):
        self.share = share
        self.rng = rng

    def decide(self, confidence: float) -> Decision:
        if self.rng.random() < self.share:
            return Decision("student", "canary")
        return Decision("teacher", "canary")


STRATEGIES: dict[str, Callable[[ServeSpec, random.Random], Strategy]] = {
    "student": lambda spec, rng: StudentOnly(),
    "cascade": lambda spec, rng: Cascade(spec.cascade_threshold),
    "shadow": lambda spec, rng: Shadow(spec.shadow_rate, rng),
    "canary": lambda spec, rng: Canary(spec.canary_share, rng),
}


def make_strategy(spec: ServeSpec, seed: int = 0) -> Strategy:
    return STRATEGIES[spec.mode](spec, random.Random(seed))
