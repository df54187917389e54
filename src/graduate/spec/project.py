"""graduate.yaml as a whole, with the checks across its sections."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from graduate.errors import SpecError
from graduate.spec.base import SPEC_FILENAME, _Model
from graduate.spec.audit import AuditSpec
from graduate.spec.clean import CleanSpec
from graduate.spec.data import DataSourceSpec, LabelImportSpec, ReviewFileSpec, TeacherLogSpec, TestSetSpec, TrainSpec
from graduate.spec.augment import AugmentSpec
from graduate.spec.evaluation import EvaluationSpec
from graduate.spec.model_selection import ModelSelectionSpec
from graduate.spec.privacy import PrivacySpec
from graduate.spec.serve import MonitorSpec, ProxySpec, ServeSpec, ServingSpec
from graduate.spec.store import StoreSpec
from graduate.spec.students import StudentSpec
from graduate.spec.task import EMPTY_SET, TaskSpec
from graduate.spec.teacher import PriceSpec, TeacherSpec


class ProjectSpec(_Model):
    """graduate.yaml: the whole project."""

    task: TaskSpec
    teacher: TeacherSpec
    prices: dict[str, PriceSpec] = Field(default_factory=dict, description="Price table by model name.")
    data: list[DataSourceSpec] = Field(default_factory=list, description="Item sources (CSV).")
    teacher_logs: list[TeacherLogSpec] = Field(default_factory=list, description="Recorded teacher calls to import.")
    label_imports: list[LabelImportSpec] = Field(
        default_factory=list, description="Labels earlier labellers gave (e.g. an old spreadsheet of LLM labels), compared with gold on the test sets."
    )
    reviews: list[ReviewFileSpec] = Field(
        default_factory=list, description="Review files kept with the project (reviewers' labels by source and external_id), imported by `graduate run`; they win over the teacher's labels."
    )
    train: TrainSpec = Field(default_factory=TrainSpec, description="The training pool.")
    test_sets: list[TestSetSpec] = Field(default_factory=list, description="Frozen, versioned test sets, evaluated against gold.")
    students: list[StudentSpec] = Field(default_factory=lambda: [StudentSpec(kind="tfidf-logreg")], description="Students to train.")
    model_selection: ModelSelectionSpec = Field(
        default_factory=ModelSelectionSpec, description="How the best student is picked: on a validation split of the training set, or named."
    )
    serving: ServingSpec = Field(default_factory=ServingSpec, description="Serving cost assumptions.")
    serve: ServeSpec = Field(default_factory=ServeSpec, description="`graduate serve`: routing, API keys and limits.")
    proxy: ProxySpec = Field(default_factory=ProxySpec, description="`graduate proxy`: the routes it forwards and its limits.")
    monitor: MonitorSpec = Field(default_factory=MonitorSpec, description="`graduate monitor`: traffic window and alert thresholds.")
    store: StoreSpec = Field(default_factory=StoreSpec, description="The database.")
    augment: AugmentSpec = Field(default_factory=AugmentSpec, description="`graduate augment`: new training items made from the pool's, with their lineage.")
    privacy: PrivacySpec = Field(default_factory=PrivacySpec, description="Personal data redacted before the call log and traffic log store it.")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Random seed for every run (0 to 4294967295).")
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec, description="How students and teacher are measured.")
    audit: AuditSpec = Field(default_factory=AuditSpec, description="`graduate teacher audit`: teacher configurations to compare on gold.")
    clean: CleanSpec = Field(default_factory=CleanSpec, description="Cleaning, label issues, balance and diversity of the training set.")
    gates: list[str] = Field(
        default_factory=list,
        description="Criteria `graduate evaluate` checks (non-zero exit when one fails), e.g. "
        "'student.accuracy >= 0.98 * teacher.accuracy on test.balanced', 'student.latency_p99_ms <= 20'; "
        "student[NAME] names a student (default: the best); metrics: see graduate.evaluate.criteria.METRICS.",
    )

    _gates: list[Any] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _cross_check(self) -> "ProjectSpec":
        sources = [d.name for d in self.data]
        if len(set(sources)) != len(sources):
            raise ValueError(f"data source names must be unique, got {sources}")
        for sel in [*self.test_sets, self.train]:
            if sel.source is not None and sel.source not in sources:
                raise ValueError(f"unknown data source {sel.source!r}; defined: {sources}")
        names = [t.name for t in self.test_sets]
        if len(set(names)) != len(names):
            raise ValueError(f"test set names must be unique, got {names}")
        def joined_by(sep: str | None) -> list[str]:
            return [lab for lab in self.task.labels if sep and (sep.strip() or sep) in lab]

        none_word = self.task.parse.none if self.task.multi_label else None

        def splits_none(sep: str | None) -> bool:  # the none word would be read as pieces, never the empty set
            return bool(none_word and sep and (sep.strip() or sep) in none_word)

        for i, li in enumerate(self.label_imports):
            if splits_none(li.separator):
                raise ValueError(f"label_imports[{i}]: parse.none {none_word!r} contains separator {li.separator!r}, so a cell could not say the empty set with it; choose a separator it does not contain")
            if joined_by(li.separator):
                raise ValueError(f"label_imports[{i}]: labels {joined_by(li.separator)} contain separator {li.separator!r}; choose a separator no label contains")
            if li.source not in sources:
                raise ValueError(f"label_imports[{i}]: unknown data source {li.source!r}; defined: {sources}")
            if self.task.multi_label != (li.separator is not None):
                raise ValueError(f"label_imports[{i}]: separator is set for multi-label tasks (their cells hold label sets) and only for them")
        for d in self.data:
            if self.task.multi_label and splits_none(d.gold_separator):
                raise ValueError(f"data {d.name!r}: parse.none {none_word!r} contains gold_separator {d.gold_separator!r}, so a gold cell could not say the empty set with it; choose a separator it does not contain")
            if self.task.multi_label and joined_by(d.gold_separator):
                raise ValueError(f"data {d.name!r}: labels {joined_by(d.gold_separator)} contain gold_separator {d.gold_separator!r}; choose a separator no label contains")
            if self.task.multi_label and d.gold_column and d.gold_separator is None:
                raise ValueError(f"data {d.name!r}: a multi-label task's gold column holds label sets; set gold_separator (e.g. ';')")
            if not self.task.multi_label and d.gold_separator is not None:
                raise ValueError(f"data {d.name!r}: gold_separator is for multi-label tasks (task.kind: multi_label)")
            empty = [EMPTY_SET] if self.task.multi_label else []  # a label set's gold may be the empty set
            bad = sorted({v for v in d.gold_values.values() if v not in self.task.labels + empty})
            if bad:
                raise ValueError(f"data {d.name!r}: gold_values maps to unknown labels {bad}; allowed: {self.task.labels + empty}")
        configs = {c.name for c in self.audit.configs}
        bad = [m for m in self.train.labeller.members if m not in configs]
        if bad:
            raise ValueError(f"train.labeller.members: unknown {bad}; name audit.configs {sorted(configs)}")
        if self.train.labeller.kind == "ensemble" and len(self.train.labeller.members or configs) < 2:
            raise ValueError("train.labeller.kind ensemble needs at least two audit.configs to vote")
        for i, sel in enumerate(self.audit.sets):
            if sel.source is not None and sel.source not in sources:
                raise ValueError(f"audit.sets[{i}]: unknown data source {sel.source!r}; defined: {sources}")
        prior = self.clean.balance.prior
        if prior is not None and self.task.multi_label:
            unknown = sorted(set(prior) - set(self.task.labels))
            if unknown:
                raise ValueError(f"clean.balance.prior names labels not in task.labels {self.task.labels}: {unknown}")
            if any(v >= 1 for v in prior.values()):
                raise ValueError(f"clean.balance.prior: a multi-label share is the share of items that carry the label, under 1; got {prior}")
        elif prior is not None and abs(sum(prior.values()) - 1) > 0.01:
            raise ValueError(f"prior shares must sum to 1, got {sum(prior.values()):g} from {prior}")
        elif prior is not None and sorted(prior) != sorted(self.task.labels):
            raise ValueError(f"clean.balance.prior must give a share for each label {self.task.labels}, got {sorted(prior)}")
        # multi-label: the empty set, "(none)", is a label set an item can have
        allowed = [*self.task.labels, *([EMPTY_SET] if self.task.multi_label else [])]
        per_label = self.augment.counterfactual.per_item
        if isinstance(per_label, dict) and set(per_label) - set(allowed):
            raise ValueError(f"augment.counterfactual.per_item names unknown labels {sorted(set(per_label) - set(allowed))}; allowed: {allowed}")
        chosen = self.augment.counterfactual.labels
        if set(chosen) - set(allowed):
            raise ValueError(f"augment.counterfactual.labels names unknown labels {sorted(set(chosen) - set(allowed))}; allowed: {allowed}")
        students = [s.label for s in self.students]
        if len(set(students)) != len(students):
            raise ValueError(f"student names must be unique, got {students}; give each a name")
        pinned = self.model_selection.student
        if pinned is not None and pinned not in students:
            raise ValueError(f"model_selection.student: {pinned!r} is not one of students: {students}; give one of those names")
        # Kinds and params are checked against the student registry by graduate.pipeline.validate
        # (the spec sits below the students).
        return self

    @model_validator(mode="after")
    def _check_evaluation(self) -> "ProjectSpec":
        from graduate.spec.gates import check_gate, parse_gate

        by_name = {d.name: d for d in self.data}
        for i, t in enumerate(self.test_sets):
            sources = [by_name[t.source]] if t.source is not None else list(self.data)
            if sources and not any(d.gold_column for d in sources):
                where = f"data source {t.source!r}" if t.source else "no data source"
                raise ValueError(f"test_sets[{i}] {t.name!r}: {where} has a gold_column; a test set needs gold labels")
        purposes = {t.name: t.purpose for t in self.test_sets}
        if purposes and "quality" not in purposes.values():
            raise ValueError("test_sets: needs at least one test set of purpose quality (bias sets do not pick the best student)")
        pair = self.evaluation.bias_pair
        if pair is not None:
            for role in ("original", "perturbed"):
                name = getattr(pair, role)
                if name not in purposes:
                    raise ValueError(f"evaluation.bias_pair.{role}: unknown test set {name!r}; the spec's test sets are {sorted(purposes)}")
                if purposes[name] != "bias":
                    raise ValueError(f"evaluation.bias_pair.{role}: give test set {name!r} purpose: bias")
            if pair.original == pair.perturbed:
                raise ValueError("evaluation.bias_pair: original and perturbed must be two different test sets")
        gates = []
        for i, text in enumerate(self.gates):
            try:
                gate = parse_gate(text)
                check_gate(
                    gate, test_sets=purposes, students=[s.label for s in self.students], has_bias_pair=pair is not None, labels=list(self.task.labels),
                    multi_label=self.task.multi_label, has_identity_terms=bool(self.evaluation.identity_terms),
                )
            except ValueError as exc:
                raise ValueError(f"gates[{i}]: {exc}") from None
            gates.append(gate)
        self._gates = gates
        return self

    @property
    def parsed_gates(self) -> list[Any]:
        """The gates as typed objects (graduate.spec.gates.Gate), parsed at validation."""
        return list(self._gates)

    @model_validator(mode="after")
    def _check_middle(self) -> "ProjectSpec":
        if self.serve.middle is not None:
            self.middle_teacher()
        return self

    def middle_teacher(self) -> "TeacherSpec | None":
        """serve.middle's teacher: its settings over the project teacher's (None without a middle tier)."""
        if self.serve.middle is None:
            return None
        merged = {**self.teacher.model_dump(exclude={"local"}), **self.serve.middle.teacher}
        try:
            return TeacherSpec.model_validate(merged)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ValueError(f"serve.middle.teacher.{'.'.join(str(x) for x in first['loc'])}: {first['msg']}") from None

    def price_for(self, model: str) -> PriceSpec | None:
        if model == self.teacher.model and self.teacher.price is not None:
            return self.teacher.price
        return self.prices.get(model)
