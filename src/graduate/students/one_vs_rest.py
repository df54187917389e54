"""Multi-label students: any single-label kind trained once per label (does the item have it: yes
or no), each label's decision threshold tuned for F1 on a validation share of the training set,
never on a test set. The pipeline wraps the spec's student kind in this when ``task.kind`` is
``multi_label``; labels arrive and leave as label sets' canonical strings
(``graduate.formats.labelset``), and ``predict_proba`` gives each label's own probability (columns
do not sum to 1). A label no training item has is never predicted (its probability is 0)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from graduate.errors import StudentError
from graduate.students import thresholds
from graduate.students.base import Student, StudentBase, params_with_defaults
from graduate.students.params import OneVsRestParams

YES, NO = "yes", "no"


class OneVsRestStudent(StudentBase):
    kind = "one-vs-rest"
    Params = OneVsRestParams  # every param: type, default, meaning (graduate students show)
    DEFAULTS: dict[str, Any] = OneVsRestParams().model_dump()
    multi_label = True

    def __init__(self, labels: list[str], **params: Any):
        from graduate.students.registry import STUDENTS, student_class

        self.labels = list(labels)
        self.params = params_with_defaults(self.kind, params, self.DEFAULTS, self.Params)
        base = self.params["base"]
        if base not in STUDENTS or base == self.kind:
            raise StudentError(f"params base: unknown student kind {base!r}; known kinds: {sorted(set(STUDENTS) - {self.kind})}", kind=self.kind)
        self.base_cls = student_class(base)
        if self.base_cls.is_ensemble or self.base_cls.needs_accelerator:
            raise StudentError(f"{base} is not trained per label yet (multi-label takes majority, tfidf-logreg, embed-logreg or encoder)", kind=self.kind)
        self.base_cls([NO, YES], **self._member_params())  # checks base_params now, before any training
        self.members: list[Student | float] = []  # per label: a yes/no student, or a constant probability
        self.thresholds: list[float] = [0.5] * len(labels)
        self.at_least_one = False
        self.report: dict[str, Any] = {}

    def check_models(self) -> None:
        try:
            self.base_cls([NO, YES], **self._member_params()).check_models()
        except StudentError as exc:
            raise StudentError(f"params.base_params: {exc}", kind=self.kind) from None

    def _member_params(self) -> dict[str, Any]:
        given = dict(self.params["base_params"])
        if "seed" in self.base_cls.DEFAULTS:
            given.setdefault("seed", self.params["seed"])
        return given

    @property
    def base_model_bytes(self) -> int:
        return max((m.base_model_bytes for m in self.members if not isinstance(m, float)), default=0)

    # -- training ------------------------------------------------------------------------------
    def _fit_members(self, texts: list[str], y: np.ndarray, weights: np.ndarray | None) -> list[Student | float]:
        members: list[Student | float] = []
        for j in range(len(self.labels)):
            col = y[:, j]
            if col.min() == col.max():  # every item has it, or none: nothing to learn
                members.append(float(col[0]) if len(col) else 0.0)
                continue
            member = self.base_cls([NO, YES], **self._member_params())
            member.fit(texts, [YES if v else NO for v in col], sample_weight=None if weights is None else list(weights))
            members.append(member)
        return members

    def _member_probs(self, members: list[Student | float], texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), len(self.labels)))
        for j, m in enumerate(members):
            out[:, j] = m if isinstance(m, float) else m.predict_proba(texts)[:, 1]
        return out

    def fit(self, texts: Sequence[str], labels: Sequence[str], *, sample_weight: Sequence[float] | None = None) -> None:
        texts = list(texts)
        y = thresholds.training_sets(self.kind, texts, labels, self.labels)
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
        train, val = thresholds.split(len(texts), self.params["validation_share"], self.params["seed"])
        held = self._fit_members([texts[i] for i in train], y[train], None if w is None else w[train])
        val_probs = self._member_probs(held, [texts[i] for i in val])
        self.thresholds, self.at_least_one, decisions = thresholds.fit_decisions(y, val, val_probs, self.labels, self.params["at_least_one"], self.params["max_labels"])
        self.members = self._fit_members(texts, y, w)  # all of it trains; the thresholds stay
        self.report = {"base": self.params["base"], **decisions, "labels_without_examples": [lab for j, lab in enumerate(self.labels) if not y[:, j].any()]}

    # -- use -------------------------------------------------------------------------------------
    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if not self.members:
            raise StudentError("not trained; call fit or load first", kind=self.kind)
        return self._member_probs(self.members, list(texts))

    def save(self, directory: Path) -> None:
        from graduate.students.registry import save_student

        directory.mkdir(parents=True, exist_ok=True)
        constants = {}
        for j, m in enumerate(self.members):
            if isinstance(m, float):
                constants[str(j)] = m
            else:
                save_student(m, directory / f"label_{j}")
        (directory / "one_vs_rest.json").write_text(
            json.dumps(
                {"labels": self.labels, "params": self.params, "thresholds": self.thresholds, "at_least_one": self.at_least_one, "constants": constants, "report": self.report},
                indent=2,
            )
        )

    @classmethod
    def load(cls, directory: Path) -> "OneVsRestStudent":
        from graduate.students.registry import load_student

        data = json.loads((directory / "one_vs_rest.json").read_text())
        obj = cls(data["labels"], **data["params"])
        obj.members = [float(data["constants"][str(j)]) if str(j) in data["constants"] else load_student(directory / f"label_{j}") for j in range(len(obj.labels))]
        obj.thresholds, obj.at_least_one, obj.report = list(data["thresholds"]), bool(data["at_least_one"]), data.get("report", {})
        return obj
