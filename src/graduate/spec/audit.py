"""`graduate teacher audit`: teacher configurations and ensembles compared on gold."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from graduate.errors import SpecError
from graduate.spec.base import SPEC_FILENAME, _Model
from graduate.spec.data import SelectionSpec
from graduate.spec.teacher import FewShotSpec, TeacherSpec, TermsSpec

if TYPE_CHECKING:
    from graduate.spec.project import ProjectSpec


class TeacherConfigSpec(_Model):
    """A teacher configuration for `graduate teacher audit`: the spec's teacher with the fields given here changed."""

    name: str = Field(description="A short name, e.g. gpt-4 simple; ensembles and train.labeller refer to it.")
    model: str | None = Field(None, description="Model name; default: teacher.model.")
    base_url: str | None = Field(None, description="Endpoint for --live; default: teacher.base_url.")
    prompt_name: str | None = Field(None, description="Name of the prompt version; default: teacher.prompt_name.")
    system: str | None = Field(None, description="System message; default: teacher.system.")
    prompt: str | None = Field(None, description="User message template with {text}; default: teacher.prompt.")
    temperature: float | None = Field(None, ge=0, le=2, description="Sampling temperature; default: teacher.temperature.")
    max_tokens: int | None = Field(None, gt=0, description="Cap on answer tokens; default: teacher.max_tokens.")
    few_shot: list[FewShotSpec] | None = Field(None, description="Worked examples before the item; default: teacher.few_shot.")
    terms: TermsSpec | None = Field(None, description="Under which terms its answers may be trained on; default: teacher.terms.")
    n: int = Field(1, ge=1, le=64, description="Samples per item: above 1 the label is the majority of n answers (self-consistency), its vote share the confidence.")

    @field_validator("prompt")
    @classmethod
    def _has_placeholder(cls, v: str | None) -> str | None:
        if v is not None and v.count("{text}") != 1:
            raise ValueError("prompt must contain the placeholder {text} exactly once")
        return v

    def resolve(self, teacher: "TeacherSpec") -> "TeacherSpec":
        """The full teacher spec this configuration describes."""
        changes = {k: v for k, v in self.model_dump(exclude={"name", "n"}, exclude_none=True).items()}
        return TeacherSpec.model_validate({**teacher.model_dump(exclude_unset=True), **changes}).variant_of(teacher)


class EnsembleSpec(_Model):
    """A vote across audited teacher configurations."""

    name: str = Field(description="A short name for the ensemble.")
    members: list[str] = Field(min_length=2, description="Names of audit.configs that vote.")
    method: Literal["majority", "weighted"] = Field(
        "majority", description="majority: one vote each (ties: no label); weighted: each vote counts log(acc/(1-acc)) of the member's audited accuracy."
    )


class AuditSpec(_Model):
    """`graduate teacher audit`: teacher configurations compared on gold-labelled sets."""

    configs: list[TeacherConfigSpec] = Field(default_factory=list, description="Configurations to compare; empty: the spec's teacher only.")
    ensembles: list[EnsembleSpec] = Field(default_factory=list, description="Votes across configurations, audited like one more configuration.")
    sets: list[SelectionSpec] = Field(default_factory=list, description="Gold-labelled audit sets; empty: the spec's quality test sets.")
    min_coverage: float = Field(
        0.9, ge=0, le=1, description="A configuration is recommended only if it gave a parseable answer for at least this share of every audit set."
    )
    fpr_flag: float = Field(
        1.5, gt=1, description="Flag a configuration whose false-positive rate is more than this many times the recommended one's (binary tasks)."
    )

    @model_validator(mode="after")
    def _names(self) -> "AuditSpec":
        names = [c.name for c in self.configs] + [e.name for e in self.ensembles]
        if len(set(names)) != len(names):
            raise ValueError(f"audit config and ensemble names must be unique, got {names}")
        known = {c.name for c in self.configs}
        for i, e in enumerate(self.ensembles):
            bad = [m for m in e.members if m not in known]
            if bad:
                raise ValueError(f"ensembles[{i}] {e.name!r}: unknown members {bad}; audit.configs are {sorted(known)}")
        return self


@dataclass
class AuditConfig:
    """One teacher configuration to audit: the spec's teacher with the configuration's changes."""

    name: str
    teacher: TeacherSpec
    n: int
    spec: dict[str, Any]


def audit_configs(spec: "ProjectSpec") -> list[AuditConfig]:
    """The configurations to audit, resolved against the spec's teacher (none listed: the teacher itself)."""
    if not spec.audit.configs:
        return [AuditConfig("teacher", spec.teacher, 1, {"name": "teacher"})]
    return [AuditConfig(c.name, c.resolve(spec.teacher), c.n, c.model_dump(exclude_none=True)) for c in spec.audit.configs]
