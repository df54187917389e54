"""Data sources, recorded teacher logs, selections, test sets and the training pool."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from graduate.errors import SpecError
from graduate.spec.base import SPEC_FILENAME, SpecPath, _Model
from graduate.spec.names import ReviewerName


# Sources graduate fills itself, not from a data file of the spec (augment and synth, served
# feedback and reviewed traffic, the proxy's traffic; `graduate label --input FILE` uses label:FILE):
# a data source of one of these names would take their items for rows its file no longer holds.
MADE_SOURCES = ("augment", "feedback", "traffic", "proxy")
LABEL_FILE_PREFIX = "label:"


class DataSourceSpec(_Model):
    """A CSV of items: text, an id, optionally gold labels and tags (subsets)."""

    name: str = Field(description="A name for this source; examples are keyed by (name, id).")

    @field_validator("name")
    @classmethod
    def _not_made(cls, v: str) -> str:
        if v in MADE_SOURCES or v.startswith(LABEL_FILE_PREFIX):
            raise ValueError(f"{v!r} names items graduate stores itself ({', '.join(MADE_SOURCES)}, {LABEL_FILE_PREFIX}FILE); give the data source another name")
        return v
    path: SpecPath = Field(description="The CSV file, relative to the project directory.")
    id_column: str | None = Field(None, description="Column with a unique id per row; default: the row number.")
    text_column: str | None = Field(None, description="Column with the text; default: task.text_column.")
    gold_column: str | None = Field(None, description="Column with gold (human) labels, if any.")
    gold_values: dict[str, str] = Field(default_factory=dict, description="Maps raw gold values (e.g. '1') to labels; empty: values are labels.")
    gold_separator: str | None = Field(
        None, min_length=1, description="Multi-label tasks: the gold column holds a set of labels joined by this (e.g. ';'), read as label imports and review files read one (any case, either Unicode form); an empty cell is no gold, and (none) or the task's parse.none word (or a value gold_values maps to (none)) the empty set."
    )
    tags_column: str | None = Field(None, description="Column naming the subsets each row belongs to.")
    tag_separator: str = Field(";", description="Separator between tags in tags_column.")
    group_column: str | None = Field(None, description="Column naming each row's group (e.g. author), for clean.group_cap.")


class LabelImportSpec(_Model):
    """Labels some earlier labeller gave (an old spreadsheet of LLM labels): one column per
    labeller, rows joined to a data source's items by id. Stored as labeller ``import:COLUMN``."""

    path: SpecPath = Field(description="The CSV file, relative to the project directory.")
    source: str = Field(description="The data source whose items the rows label (joined on its id_column).")
    id_column: str = Field("id", description="Column with the item's id in that source.")
    columns: list[str] = Field(min_length=1, description="The columns holding labels, one per labeller.")
    separator: str | None = Field(None, min_length=1, description="Multi-label tasks: what joins the labels of a set in a cell (e.g. ';').")
    values: dict[str, str] = Field(default_factory=dict, description="Maps raw values to labels; empty: values are labels.")


class ReviewFileSpec(_Model):
    """A review file kept with the project: reviewers' labels (``corrected_label``) for items named by
    ``source`` and ``external_id`` (or a store's ``example_id``), imported by `graduate run` as human
    labels that win over the teacher's, as `graduate data review import` does (importing it again
    changes nothing)."""

    path: SpecPath = Field(description="The review CSV, relative to the project directory.")
    reviewer: ReviewerName | None = Field(None, description="Who reviewed, for rows whose reviewer cell is empty.")


class TeacherLogSpec(_Model):
    """Recorded teacher calls to import into the call log."""

    format: Literal["batch", "pairs"] = Field("batch", description="batch: OpenAI Batch API input+output files; pairs: JSONL of {request, response}.")
    input: SpecPath = Field(description="Batch input JSONL (or the pairs JSONL).")
    output: SpecPath | None = Field(None, description="Batch output JSONL (batch format only).")

    @model_validator(mode="after")
    def _check(self) -> "TeacherLogSpec":
        if self.format == "batch" and self.output is None:
            raise ValueError("a batch log needs both input and output files")
        return self


class SelectionSpec(_Model):
    """Which examples: by source and tags (shell-style patterns, e.g. train*)."""

    name: str = Field(description="Name of the set, e.g. test.balanced.")
    source: str | None = Field(None, description="Data source name; default: every source.")
    tags: list[str] = Field(default_factory=list, description="Tag patterns; an example with any matching tag is in the set. Empty: all.")
    share: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="Keep this share of the matching examples, chosen by a hash of each text and the set's name (stable as data is added), "
        "e.g. to carve a calibration set out of the training pool: the build leaves a test set's items out of training.",
    )


class TestSetSpec(SelectionSpec):
    """A frozen test set: its content hash is stored with every result, and a changed set is
    refused until it is declared a new version."""

    __test__ = False  # not a pytest class

    version: int = Field(1, ge=1, description="The set's version; raise it when the set's items or gold labels change on purpose.")
    purpose: Literal["quality", "bias", "calibration"] = Field(
        "quality",
        description="quality: picks the best student and judges gates without 'on'; "
        "bias: a diagnostic set (e.g. the identity-swapped pair), reported but not used to pick the best student; "
        "calibration: held out from training (e.g. a share of the pool) for `graduate serve-plan` to choose the cascade threshold on, never a test set.",
    )


class LabellerSpec(_Model):
    """Who labels the training set: the teacher's first answer, a majority over its repeated
    answers (self-consistency), or a vote over several audited teacher configurations."""

    kind: Literal["teacher", "self_consistency", "ensemble"] = Field(
        "teacher",
        description="teacher: the spec teacher's stored answer; self_consistency: majority over every stored sample of that request "
        "(vote share = confidence); ensemble: a vote over audit.configs (each one's own majority when it has n > 1).",
    )
    members: list[str] = Field(default_factory=list, description="ensemble: names of audit.configs that vote; empty: every audit config.")
    method: Literal["majority", "weighted"] = Field(
        "majority",
        description="ensemble: majority (one vote each) or weighted (each member's vote counts log(acc/(1-acc)) of its accuracy in the "
        "latest `graduate teacher audit`).",
    )
    min_vote_share: float = Field(0.0, ge=0, le=1, description="Drop items whose winning label got a smaller share of the (weighted) votes; 0: keep all.")
    weight_by_vote_share: bool = Field(False, description="Give each item the winning vote share as its training weight (ties weigh 0.5).")


class TrainSpec(_Model):
    """What the students learn from."""

    source: str | None = Field(None, description="Data source name; default: every source.")
    tags: list[str] = Field(default_factory=lambda: ["*"], description="Tag patterns of the training pool, e.g. [train*].")
    exclude_test_overlap: bool = Field(True, description="Drop training items whose normalised text is in a test set (leakage guard).")
    labeller: LabellerSpec = Field(default_factory=LabellerSpec, description="Who labels the training set (teacher, self-consistency or an ensemble).")
    include_feedback: bool = Field(
        True, description="Add the items people labelled through POST /v1/feedback (source feedback) to the training pool; their label wins."
    )
    allow_restricted_labels: bool = Field(
        False, description="Build from labels whose teacher.terms.train_allowed is false anyway (you hold other rights to them)."
    )
