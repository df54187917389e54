"""The task: its labels and how to read the teacher's answer."""

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


# The answer formats that give a set of labels (task.kind multi_label).
MULTI_LABEL_KINDS = frozenset({"label_list", "json_list", "json_booleans"})
# How a label set that holds no label is written (graduate.formats.labelset.NONE; the spec sits below formats).
EMPTY_SET = "(none)"


class ParseSpec(_Model):
    """How to turn the teacher's raw answer into one of the task's labels."""

    kind: Literal["json_key", "regex", "label_words", "label_list", "json_list", "json_booleans"] = Field(
        "json_key",
        description="json_key: read `key` from a JSON/Python-dict answer (code fences allowed); "
        "regex: the first group of `pattern`; label_words: the one label whose words appear. "
        "Multi-label tasks: label_list: label words joined by `separator` (e.g. 'care, equality'); "
        "json_list: a JSON list of labels (under `key` when given); json_booleans: a JSON object {label: true|false} (under `key` when given).",
    )
    key: str | None = Field(None, description="For json_key: the key that holds the answer, e.g. is_bad.")
    pattern: str | None = Field(None, description="For regex: a regular expression whose group 1 is the answer.")
    values: dict[str, str] = Field(
        default_factory=dict,
        description="Maps the raw answer (as text, e.g. '1') to a label; empty means the raw answer is the label. "
        "A JSON boolean reads as the value named true/false (any case), else as 1/0.",
    )
    words: dict[str, list[str]] = Field(
        default_factory=dict,
        description="For label_words and label_list: words that mean each label; default: the label names themselves.",
    )
    separator: str = Field(",", min_length=1, description="For label_list: what separates the label words in an answer.")
    none: str | None = Field(
        None, description="Multi-label: the answer that means no label applies (e.g. 'none'); a task label of that name is a label, not the empty set."
    )
    max_labels: int | None = Field(None, ge=1, description="Multi-label: the most labels an answer may give; more is a parse failure.")

    @property
    def multi_label(self) -> bool:
        return self.kind in MULTI_LABEL_KINDS

    @model_validator(mode="after")
    def _check_kind_fields(self) -> "ParseSpec":
        if self.kind == "json_key" and not self.key:
            raise ValueError("parse.kind json_key needs parse.key (the JSON key holding the answer)")
        if self.kind == "regex":
            if not self.pattern:
                raise ValueError("parse.kind regex needs parse.pattern (a regex whose group 1 is the answer)")
            import re

            try:
                compiled = re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"parse.pattern is not a valid regular expression: {exc}") from exc
            if compiled.groups < 1:
                raise ValueError("parse.pattern needs one capturing group: the answer")
        return self


class TaskSpec(_Model):
    """The classification task."""

    name: str = Field(max_length=200, description="A short name for the task, e.g. toxicity (at most 200 characters).")
    kind: Literal["single_label", "multi_label"] = Field(
        "single_label", description="single_label: one label per item; multi_label: any set of the labels (possibly none) per item."
    )
    text_column: str = Field("text", description="The input column that holds the text to classify.")
    labels: list[str] = Field(description="The task's labels, in a fixed order (at least two).")
    positive_label: str | None = Field(
        None, description="For binary tasks: the label that counts as positive for precision/recall (default: the last label)."
    )
    parse: ParseSpec = Field(default_factory=lambda: ParseSpec(kind="label_words"), description="How to parse the teacher's answer.")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        # `graduate promote` names the project to the server by it (POST /admin/promote's project,
        # 1-200 characters): an empty name made every promotion a 422
        if not v.strip():
            raise ValueError("a task needs a visible name (not empty or only spaces), e.g. toxicity")
        return v

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: list[str]) -> list[str]:
        if len(v) < 2:
            raise ValueError("a task needs at least two labels")
        if len(set(v)) != len(v):
            raise ValueError("labels must be unique")
        blank = [lab for lab in v if not lab.strip()]
        if blank:
            raise ValueError(f"labels {blank}: a label needs a visible name (not empty or only spaces)")
        broken = [lab for lab in v if "\n" in lab or "\r" in lab]
        if broken:
            raise ValueError(f"labels {broken}: a label may not hold a line break; name it on one line")
        return v

    @model_validator(mode="after")
    def _check(self) -> "TaskSpec":
        if self.positive_label is not None and self.positive_label not in self.labels:
            raise ValueError(f"positive_label {self.positive_label!r} is not one of labels {self.labels}")
        bad = sorted({v for v in self.parse.values.values() if v not in self.labels})
        if bad:
            raise ValueError(f"parse.values maps to unknown labels {bad}; allowed: {self.labels}")
        bad = sorted(k for k in self.parse.words if k not in self.labels)
        if bad:
            raise ValueError(f"parse.words has unknown labels {bad}; allowed: {self.labels}")
        if self.kind == "multi_label" and not self.parse.multi_label:
            raise ValueError(f"task.kind multi_label reads answers with parse.kind {' | '.join(sorted(MULTI_LABEL_KINDS))}, not {self.parse.kind}")
        if self.kind == "single_label" and self.parse.multi_label:
            raise ValueError(f"parse.kind {self.parse.kind} gives a set of labels: set task.kind: multi_label")
        ignored = [f"parse.{f}" for f in ("max_labels", "none") if getattr(self.parse, f) is not None]
        if self.kind == "single_label" and ignored:  # nothing reads them for one label an item
            raise ValueError(f"{' and '.join(ignored)} {'is' if len(ignored) == 1 else 'are'} for multi-label tasks (task.kind: multi_label); remove {'it' if len(ignored) == 1 else 'them'}")
        if self.kind == "multi_label":
            bad = [lab for lab in self.labels if ";" in lab or lab == EMPTY_SET]
            if bad:
                raise ValueError(f"labels {bad}: a multi-label task's labels may not contain ';' or be '(none)' (they spell label sets)")
            bad = [lab for lab in self.labels if lab != lab.strip()]
            if bad:  # gold cells and answer words are read stripped: such a label would never match
                raise ValueError(f"labels {bad}: a multi-label task's label may not start or end with spaces; name it {bad[0].strip()!r}")
            sep = self.parse.separator.strip() or self.parse.separator
            bad = [lab for lab in self.labels if sep in lab]
            if self.parse.kind == "label_list" and bad:
                raise ValueError(f"labels {bad} contain parse.separator {self.parse.separator!r}, so an answer could not be split back into them; rename the labels or choose another separator")
        if self.kind == "multi_label" and self.parse.max_labels is not None and self.parse.max_labels > len(self.labels):
            raise ValueError(f"parse.max_labels {self.parse.max_labels} is more than the {len(self.labels)} labels")
        return self

    @property
    def multi_label(self) -> bool:
        return self.kind == "multi_label"

    @property
    def positive(self) -> str:
        return self.positive_label or self.labels[-1]
