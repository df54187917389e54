"""The student protocol: fit on texts and labels, give class probabilities, save and load.

``predict_proba`` returns an (n, len(labels)) array whose columns follow ``labels`` (the task's
label order); every other output is derived from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np


class Student(Protocol):
    """The contract: ``fit``, ``predict_proba``, ``save``, ``load``, and the capabilities a kind
    declares (``StudentBase`` holds their defaults; callers read them, never probe for them)."""

    kind: str
    labels: list[str]
    multi_label: bool
    thresholds: list[float]  # multi-label: each label's decision threshold
    needs_accelerator: bool
    soft_labels: bool
    is_ensemble: bool
    on_progress: Any
    report: dict[str, Any]

    @property
    def base_model_bytes(self) -> int: ...

    @staticmethod
    def wants_rationales(params: dict[str, Any]) -> bool: ...

    @classmethod
    def defaults_from_spec(cls, spec: Any) -> dict[str, Any]: ...

    def fit(self, texts: Sequence[str], labels: Sequence[str], *, sample_weight: Sequence[float] | None = None) -> None: ...

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...

    def decide(self, probs: np.ndarray) -> list[str]:
        """The label each row of ``predict_proba`` stands for (multi-label: the label set's canonical string)."""
        ...

    def save(self, directory: Path) -> None: ...

    @classmethod
    def load(cls, directory: Path) -> "Student": ...


class StudentBase:
    """The capabilities every kind declares, with their defaults; a kind overrides what it has.
    A plain holder of values, not a framework: ``fit``/``predict_proba``/``save``/``load`` are each
    kind's own."""

    kind: str = ""
    labels: list[str]
    # Predicts label sets (canonical strings, graduate.formats.labelset), one probability per label.
    multi_label: bool = False
    # Multi-label: each label's decision threshold and whether a set may be empty (set by fit).
    thresholds: list[float] = []  # noqa: RUF012 - read-only default
    at_least_one: bool = False
    # The kind's params (with defaults); multi-label ones may cap a set (max_labels, from the spec).
    params: dict[str, Any] = {}  # noqa: RUF012 - read-only default; every kind assigns its own
    # Trains label sets itself when its params say multi_label: true (else the pipeline trains it
    # once per label with one-vs-rest).
    takes_multi_label: bool = False
    # Training needs a GPU to finish in reasonable time (an LLM fine-tune: hours per epoch on CPU);
    # `graduate train --ladder` leaves such kinds out on a CPU-only machine unless named in --rungs.
    needs_accelerator: bool = False
    # fit accepts soft_labels= (the teacher's label distributions).
    soft_labels: bool = False
    # Built from other students (each its own tracked run): has from_members(labels, params, members).
    is_ensemble: bool = False
    # Called with (steps done, total) while training, when the kind reports progress.
    on_progress: Any = None
    # What fit measured or decided (precision, epochs chosen, quantisation check...), saved with it.
    report: dict[str, Any] = {}  # noqa: RUF012 - read-only default; kinds that report assign their own

    @property
    def base_model_bytes(self) -> int:
        """A shared base model it needs beside its own files (0: none)."""
        return 0

    @staticmethod
    def wants_rationales(params: dict[str, Any]) -> bool:
        """Whether fit should get the teacher's reasons per item."""
        return False

    def check_models(self) -> None:
        """Check what the params name on disk (base models, their layer counts) without loading or
        training anything (``graduate check``); a problem is a StudentError naming the param."""

    @classmethod
    def defaults_from_spec(cls, spec: Any) -> dict[str, Any]:
        """Params derived from graduate.yaml (e.g. the teacher's prompt for an LLM student)."""
        return {}

    def decide(self, probs: np.ndarray) -> list[str]:
        """The most probable label of each row."""
        if self.multi_label:
            from graduate.students.thresholds import decide_sets

            return decide_sets(probs, self.labels, self.thresholds, self.at_least_one, self.params.get("max_labels"))
        return [self.labels[i] for i in np.asarray(probs).argmax(axis=1)]

    def decision_rule(self) -> Any:
        """``decide`` without the model (a server keeps this, not the student): None for argmax."""
        if not self.multi_label:
            return None
        from functools import partial

        from graduate.students.thresholds import decide_sets

        return partial(decide_sets, labels=list(self.labels), thresholds=list(self.thresholds), at_least_one=self.at_least_one, max_labels=self.params.get("max_labels"))


def predict_labels(student: Student, texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Labels (argmax) and the probabilities they came from."""
    probs = student.predict_proba(texts)
    return student.decide(probs), probs


def check_fit_input(kind: str, texts: Sequence[str], labels: Sequence[str], known: list[str]) -> None:
    from graduate.errors import StudentError

    if len(texts) != len(labels):
        raise StudentError(f"{len(texts)} texts but {len(labels)} labels", kind=kind)
    if not texts:
        raise StudentError("no training data; label some items first (graduate label / graduate import)", kind=kind)
    unknown = sorted(set(labels) - set(known))
    if unknown:
        raise StudentError(f"labels {unknown} are not task labels {known}", kind=kind)
    if len(set(labels)) < 2:
        raise StudentError(
            f"the training set has one class only ({labels[0]!r}); add items of the other labels", kind=kind
        )


def params_with_defaults(kind: str, given: dict[str, Any], defaults: dict[str, Any], model: Any = None) -> dict[str, Any]:
    """The defaults with ``given`` on top, checked against the kind's typed ``Params`` model
    (unknown names, types, ranges: one StudentError naming each). Values are kept as given, so a
    run's fingerprint does not change with how a number was written."""
    from graduate.errors import StudentError

    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise StudentError(f"unknown params {unknown}; allowed: {sorted(defaults)}", kind=kind)
    merged = {**defaults, **given}
    if model is not None:
        from graduate.students.params import check_params

        check_params(kind, model, merged)
    return merged
