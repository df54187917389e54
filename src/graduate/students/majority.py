"""The floor of the ladder: always the most frequent training label (probabilities = class priors)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from graduate.students.base import StudentBase, check_fit_input, params_with_defaults
from graduate.students.params import MajorityParams


class MajorityStudent(StudentBase):
    kind = "majority"
    Params = MajorityParams  # every param: type, default, meaning (graduate students show)
    DEFAULTS: dict[str, Any] = MajorityParams().model_dump()

    def __init__(self, labels: list[str], **params: Any):
        self.labels = list(labels)
        self.params = params_with_defaults(self.kind, params, self.DEFAULTS, self.Params)
        self.priors = np.full(len(labels), 1.0 / len(labels))

    def fit(self, texts: Sequence[str], labels: Sequence[str], *, sample_weight: Sequence[float] | None = None) -> None:
        check_fit_input(self.kind, texts, labels, self.labels)
        w = np.ones(len(labels)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        counts = np.array([w[np.asarray(labels) == lab].sum() for lab in self.labels])
        self.priors = counts / counts.sum()

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return np.tile(self.priors, (len(texts), 1))

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "majority.json").write_text(json.dumps({"labels": self.labels, "priors": self.priors.tolist()}))

    @classmethod
    def load(cls, directory: Path) -> "MajorityStudent":
        data = json.loads((directory / "majority.json").read_text())
        obj = cls(data["labels"])
        obj.priors = np.asarray(data["priors"])
        return obj
