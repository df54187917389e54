"""Soft voting: several students trained on the same data, their class probabilities averaged.

Students of different kinds make different mistakes: a fine-tuned encoder reads context but also
copies its teacher's over-eager calls, a TF-IDF model keys on words and is more conservative on
ordinary comments. Averaging their probabilities (weighted by ``weight``) is the classic remedy
(scikit-learn's soft ``VotingClassifier``); this is that, for graduate's student kinds.

``members`` is a list of ``{kind, params, weight, use_weights}``. ``use_weights: false`` trains
that member on the raw class shares, ignoring the dataset's balance weights (e.g. to blend an
encoder weighted to the production prior with a lexical model at the pool's prior). Each member
is saved in its own folder (``member_0/``…) in its kind's own layout, with its own report.

In a project each member is trained as its own tracked run (``Project.train``), so a member that
was trained before with the same params, data, code and seed (e.g. the ladder's ``encoder`` rung)
is reused, not trained again; ``fit`` trains them all here, for use as a library.

Multi-label tasks (``multi_label: true``): every member predicts label sets (a kind that takes them
itself, else ``one-vs-rest``), each with thresholds tuned on its own validation share. Averaging raw
probabilities would ignore those operating points, so each member's probability is read relative to
its own threshold, ``logit(p) - logit(threshold)``, these margins are averaged by weight, and the
ensemble's probability is the sigmoid of the mean: above 0.5 exactly when the weighted members lean
yes past their own thresholds. The ensemble's thresholds are therefore 0.5; it keeps at least one
label when any member does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from graduate.errors import StudentError
from graduate.students.base import Student, StudentBase, check_fit_input, params_with_defaults
from graduate.students.params import EnsembleParams

_MEMBER_KEYS = {"kind", "params", "weight", "use_weights"}


class EnsembleStudent(StudentBase):
    kind = "ensemble"
    soft_labels = True  # passed on to the members that learn from the teacher's distributions
    is_ensemble = True
    Params = EnsembleParams  # every param: type, default, meaning (graduate students show)
    DEFAULTS: dict[str, Any] = EnsembleParams().model_dump()

    takes_multi_label = True  # params multi_label: members predict label sets, margins averaged

    def __init__(self, labels: list[str], **params: Any):
        self.labels = list(labels)
        self.params = params_with_defaults(self.kind, params, self.DEFAULTS, self.Params)
        self.specs = _member_specs(self.params["members"])
        self.multi_label = bool(self.params["multi_label"])
        self.thresholds: list[float] = [0.5] * len(self.labels)
        self.at_least_one = False
        self._untrained_members()  # a member's bad params fail now, not after the members before it have trained
        self.members: list[Student] = []
        self.report: dict[str, Any] = {}
        self.on_progress: Callable[[int, int], None] | None = None

    def _untrained_members(self, check_models: bool = False) -> list[Student]:
        """Each member as it will train (its params checked; with ``check_models`` its base models
        too); a problem names the member's index."""
        from graduate.students.registry import student_class

        out = []
        for i, m in enumerate(self.specs):
            try:
                kind, member_params = self._member_kind(m["kind"], {**self.params["member_defaults"].get(m["kind"], {}), **m["params"]})
                member = student_class(kind)(self.labels, **member_params)
                if check_models:
                    member.check_models()
            except StudentError as exc:
                raise StudentError(f"params.members[{i}].params: {exc}", kind=self.kind) from None
            out.append(member)
        return out

    def check_models(self) -> None:
        """Each member's base models, its index named."""
        self._untrained_members(check_models=True)

    def _member_kind(self, kind: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """A member as it trains for this task: on label sets when the ensemble is multi-label."""
        if not self.multi_label:
            return kind, params
        from graduate.students.registry import for_label_sets

        return for_label_sets(kind, params)

    @staticmethod
    def wants_rationales(params: dict[str, Any]) -> bool:
        """True when a member learns the teacher's reasons (a lora-llm member with rationale_weight > 0)."""
        from graduate.students.registry import student_class

        return any(
            student_class(m["kind"]).wants_rationales(m["params"])
            for m in EnsembleStudent.member_specs(params)
        )

    @classmethod
    def defaults_from_spec(cls, spec: Any) -> dict[str, Any]:
        """What each member kind derives from the spec (lora-llm: the teacher's prompt and format)."""
        from graduate.students.registry import STUDENTS, student_class

        hooks = {kind: student_class(kind).defaults_from_spec for kind in STUDENTS if kind != cls.kind}
        return {"member_defaults": {kind: d for kind, hook in hooks.items() if (d := hook(spec))}}

    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[str],
        *,
        sample_weight: Sequence[float] | None = None,
        soft_labels: np.ndarray | None = None,
        rationales: Sequence[str | None] | None = None,
    ) -> None:
        from graduate.students.registry import student_class

        if not self.multi_label:
            check_fit_input(self.kind, texts, labels, self.labels)
        members: list[Student] = []
        for i, m in enumerate(self.specs):
            kind, params = self._member_kind(m["kind"], {**self.params["member_defaults"].get(m["kind"], {}), **m["params"]})
            cls = student_class(kind)
            if "seed" in cls.DEFAULTS:
                params.setdefault("seed", self.params["seed"])
            student = cls(self.labels, **params)
            if self.on_progress is not None:
                student.on_progress = self.on_progress
            extra: dict[str, Any] = {}
            if soft_labels is not None and cls.soft_labels:
                extra["soft_labels"] = soft_labels
            if rationales is not None and cls.wants_rationales(params):
                extra["rationales"] = rationales
            weights = sample_weight if m["use_weights"] else None
            try:
                student.fit(texts, labels, sample_weight=weights, **extra)
            except StudentError as exc:
                raise StudentError(f"member {i} ({m['kind']}): {exc}", kind=self.kind) from exc
            members.append(student)
        self._set_members(members)

    @staticmethod
    def member_specs(params: dict[str, Any]) -> list[dict[str, Any]]:
        """The validated members: ``{kind, params, weight, use_weights}`` each. A project trains each
        as its own tracked run (so one trained before, e.g. by the ladder, is reused) and then
        builds the ensemble with ``from_members``."""
        return _member_specs(params.get("members", EnsembleStudent.DEFAULTS["members"]))

    @classmethod
    def from_members(cls, labels: list[str], params: dict[str, Any], members: Sequence[Student]) -> EnsembleStudent:
        """The ensemble of members already trained, in the order of ``params.members``."""
        obj = cls(labels, **params)
        got, want = [m.kind for m in members], [obj._member_kind(s["kind"], dict(s["params"]))[0] for s in obj.specs]
        if got != want:
            raise StudentError(f"members {got} do not match params.members {want}", kind=cls.kind)
        obj._set_members(list(members))
        return obj

    def _set_members(self, members: list[Student]) -> None:
        self.members = members
        if self.multi_label:
            if not all(getattr(m, "multi_label", False) for m in members):
                raise StudentError("a multi-label ensemble needs members that predict label sets", kind=self.kind)
            self.at_least_one = any(bool(getattr(m, "at_least_one", False)) for m in members)
        self.report = {
            "members": [
                {"kind": s["kind"], "weight": s["weight"], "use_weights": s["use_weights"], **m.report}
                for s, m in zip(self.specs, members)
            ]
        }

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if not self.members:
            raise StudentError("not trained; call fit or load first", kind=self.kind)
        weights = np.array([m["weight"] for m in self.specs], dtype=float)
        probs = np.stack([member.predict_proba(texts) for member in self.members])
        if self.multi_label:  # each member's margin past its own thresholds, averaged by weight
            from scipy.special import expit, logit

            eps = 1e-6
            cuts = np.stack([np.asarray(member.thresholds, dtype=float) for member in self.members])[:, None, :]
            margins = logit(np.clip(probs, eps, 1 - eps)) - logit(np.clip(cuts, eps, 1 - eps))
            return expit(np.tensordot(weights / weights.sum(), margins, axes=1))
        return np.tensordot(weights / weights.sum(), probs, axes=1)

    @property
    def base_model_bytes(self) -> int:
        """Shared base models the members read beside their own files (embed-logreg, lora-llm)."""
        return sum(int(m.base_model_bytes) for m in self.members)

    def save(self, directory: Path) -> None:
        from graduate.students.registry import save_student

        directory.mkdir(parents=True, exist_ok=True)
        for i, member in enumerate(self.members):
            save_student(member, directory / f"member_{i}")
        params = {k: v for k, v in self.params.items() if k != "member_defaults"}
        (directory / "ensemble.json").write_text(
            json.dumps(
                {"labels": self.labels, "params": params, "report": self.report},
                indent=2,
                default=str,
            )
        )

    @classmethod
    def load(cls, directory: Path) -> "EnsembleStudent":
        from graduate.students.registry import load_student

        data = json.loads((directory / "ensemble.json").read_text())
        obj = cls(data["labels"], **data["params"])
        members = [load_student(directory / f"member_{i}") for i in range(len(obj.specs))]
        report = data.get("report", {})
        obj._set_members(members)
        obj.report = report
        return obj


def _member_specs(raw: Any) -> list[dict[str, Any]]:
    """Validated member entries, with defaults filled in."""
    from graduate.students.registry import LADDER

    fix = "params.members is a list such as [{kind: encoder}, {kind: tfidf-logreg, weight: 1}]"
    if not isinstance(raw, list) or len(raw) < 2:
        raise StudentError(f"an ensemble needs at least two members; {fix}", kind=EnsembleStudent.kind)
    specs = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict) or "kind" not in m:
            raise StudentError(f"params.members[{i}] has no kind; {fix}", kind=EnsembleStudent.kind)
        unknown = sorted(set(m) - _MEMBER_KEYS)
        if unknown:
            raise StudentError(
                f"params.members[{i}]: unknown keys {unknown}; allowed: {sorted(_MEMBER_KEYS)}",
                kind=EnsembleStudent.kind,
            )
        kind = m["kind"]
        if kind == EnsembleStudent.kind or kind not in LADDER:
            known = sorted(k for k in LADDER if k != EnsembleStudent.kind)
            raise StudentError(
                f"params.members[{i}].kind {kind!r} is not a member kind; known: {known}",
                kind=EnsembleStudent.kind,
            )
        weight = m.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight > 0:
            raise StudentError(
                f"params.members[{i}].weight must be a number > 0, not {weight!r}",
                kind=EnsembleStudent.kind,
            )
        params = m.get("params") or {}
        if not isinstance(params, dict):
            raise StudentError(
                f"params.members[{i}].params must be a mapping of {kind} options",
                kind=EnsembleStudent.kind,
            )
        use = m.get("use_weights", True)
        if not isinstance(use, bool):
            raise StudentError(
                f"params.members[{i}].use_weights must be true or false, not {use!r}",
                kind=EnsembleStudent.kind,
            )
        specs.append(
            {
                "kind": kind,
                "params": dict(params),
                "weight": float(weight),
                "use_weights": use,
            }
        )
    return specs
