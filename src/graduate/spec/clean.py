"""Cleaning the training set: filters, duplicates, label issues, balance, diversity."""

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


class FilterSpec(_Model):
    """Rule filters on the training items' text."""

    min_chars: int | None = Field(None, ge=0, description="Drop items with fewer characters (after trimming).")
    max_chars: int | None = Field(None, ge=1, description="Drop items with more characters.")
    drop_patterns: list[str] = Field(default_factory=list, description="Drop items whose text matches any of these regular expressions.")

    @field_validator("drop_patterns")
    @classmethod
    def _compiles(cls, v: list[str]) -> list[str]:
        import re

        for pat in v:
            try:
                re.compile(pat)
            except re.error as exc:
                raise ValueError(f"drop_patterns: {pat!r} is not a valid regular expression: {exc}") from None
        return v


class NearDuplicateSpec(_Model):
    """Near-duplicate removal: MinHash over character shingles of the normalised text (datasketch)."""

    enabled: bool = Field(False, description="Drop items whose text is nearly the same as an earlier item's.")
    threshold: float = Field(0.8, gt=0, le=1, description="Estimated Jaccard similarity of the shingle sets at which two texts are near-duplicates.")
    shingle_chars: int = Field(5, ge=1, le=20, description="Characters per shingle.")
    num_perm: int = Field(128, ge=16, le=1024, description="MinHash permutations (more: more exact, slower).")


class LabelIssueSpec(_Model):
    """Label-issue detection: cleanlab on out-of-fold probabilities of a student trained on the teacher's labels."""

    action: Literal["off", "report", "remove", "down_weight"] = Field(
        "off", description="off: skip; report: rank suspected label errors (recipe, review queue); remove: drop them; down_weight: train on them with `weight`."
    )
    student: str = Field("tfidf-logreg", description="Student kind that gives the out-of-fold probabilities.")
    params: dict[str, Any] = Field(default_factory=dict, description="Options of that student.")
    folds: int = Field(5, ge=2, le=20, description="Cross-validation folds.")
    filter_by: Literal["prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "predicted_neq_given"] = Field(
        "prune_by_noise_rate", description="cleanlab.filter.find_label_issues' filter_by."
    )
    max_share: float = Field(0.2, gt=0, le=1, description="Act on at most this share of the items (the most suspect first).")
    weight: float = Field(0.2, ge=0, le=1, description="down_weight: the training weight of a suspected item.")


class BalanceSpec(_Model):
    """Class balance of the training set: reported always, changed only if asked."""

    strategy: Literal["none", "class_weight", "undersample", "prior"] = Field(
        "none",
        description="none: report counts only; class_weight: weight items so each class counts alike (n / (classes x count)); "
        "undersample: drop random items of the larger classes down to the smallest class's count; "
        "prior: weight items so the classes count in the shares of `prior` (the rates the student will see in production). "
        "Multi-label: class_weight makes each item weigh its rarest label; prior rakes the item weights so each named label "
        "is carried by its share of the items; undersample drops random items whose every label is more common than the rarest.",
    )
    prior: dict[str, float] | None = Field(
        None,
        description="strategy prior: each label's share in production, e.g. {bad: 0.1, ok: 0.9} when the pool over-samples "
        "toxic comments; shares are > 0 and sum to 1. Multi-label: the share of production items that carry each named "
        "label, e.g. {care: 0.2, purity: 0.03}, each between 0 and 1 (labels left out keep their share).",
    )

    @model_validator(mode="after")
    def _prior(self) -> "BalanceSpec":
        if self.strategy == "prior":
            if not self.prior:
                raise ValueError("strategy prior needs prior: {label: share, ...} (each label's share in production)")
            if any(v <= 0 for v in self.prior.values()):
                raise ValueError(f"prior shares must be > 0, got {self.prior}")
            # the sum is checked with the task (graduate.spec.project): label sets' shares need not sum to 1
        elif self.prior is not None:
            raise ValueError(f"prior is used only with strategy: prior (strategy is {self.strategy})")
        return self


class DiversitySpec(_Model):
    """`graduate data diversity`: embedding clusters of the unlabelled pool vs the training set."""

    pool_tags: list[str] = Field(default_factory=lambda: ["*"], description="Tag patterns of the pool (of train.source); items in a test set are left out.")
    clusters: int = Field(20, ge=2, le=500, description="k-means clusters over pool and training embeddings.")
    sample: int = Field(3000, ge=100, description="Most texts embedded per side (random sample, seeded).")
    embedding: Literal["auto", "minilm", "tfidf"] = Field("auto", description="minilm (graduate[embed]), tfidf, or auto (minilm when installed).")
    min_coverage: float = Field(0.5, gt=0, description="A cluster whose training share is below this fraction of its pool share is 'not covered'.")


class CleanSpec(_Model):
    """Cleaning, label-issue, balance and group steps of the training-set build; each records what it changed in the recipe."""

    human_labels: bool = Field(True, description="Human corrections (`graduate data review import`, `reviews:` files, `/v1/feedback`) replace teacher labels.")
    filters: FilterSpec = Field(default_factory=FilterSpec, description="Length and regex filters.")
    near_duplicates: NearDuplicateSpec = Field(default_factory=NearDuplicateSpec, description="MinHash near-duplicate removal.")
    group_cap: int | None = Field(None, ge=1, description="Keep at most this many items per group (data[].group_column), the first ones by id.")
    label_issues: LabelIssueSpec = Field(default_factory=LabelIssueSpec, description="cleanlab label-issue detection.")
    balance: BalanceSpec = Field(default_factory=BalanceSpec, description="Class balance.")
    diversity: DiversitySpec = Field(default_factory=DiversitySpec, description="Coverage report of the unlabelled pool.")
