"""How students and teacher are measured: intervals, calibration, latency, slices, bias."""

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
from graduate.spec.terms import clean_terms


DEFAULT_IDENTITY_TERMS = [
    "catholic", "christian", "gay", "heterosexual", "homosexual", "jew", "jewish", "lesbian",
    "muslim", "protestant", "queer", "sikh", "transgender",
]


class BiasPairSpec(_Model):
    """Two test sets with the same items (joined on id), identity terms swapped in the second."""

    original: str = Field(description="The test set with the original texts, e.g. bias.original.")
    perturbed: str = Field(description="The test set whose identity terms were swapped, e.g. bias.fuzzed.")


class EvaluationSpec(_Model):
    """How students and teacher are measured: intervals, calibration, latency, slices, bias."""

    bootstrap_resamples: int = Field(
        1000, ge=0, description="Resamples for the bootstrap confidence intervals (scipy.stats.bootstrap) on accuracy, F1 and ROC-AUC; 0: none."
    )
    confidence_level: float = Field(0.95, gt=0, lt=1, description="Confidence level of those intervals.")
    calibration_bins: int = Field(10, ge=2, le=100, description="Equal-width probability bins for the reliability curve and the expected calibration error.")
    latency_items: int = Field(200, ge=1, description="Items each student predicts one at a time for the latency percentiles.")
    latency_batch_size: int = Field(64, ge=1, description="Batch size for the batch latency figure (ms per item).")
    length_buckets: list[int] = Field(
        default_factory=lambda: [100, 300, 1000], description="Text-length slice boundaries in characters, ascending: [100, 300] gives <100, 100-299, >=300."
    )
    identity_terms: list[str] | None = Field(
        None,
        description="Identity terms for the slices and the bias table (matched as whole words, case-insensitive); "
        "default: none, or with a bias_pair the 13 terms swapped in the conversationai fuzzed toxicity set.",
    )
    min_slice_size: int = Field(10, ge=1, description="Slices with fewer items are listed but not ranked among the worst.")
    min_teacher_answers: int = Field(
        30, ge=1, description="Below this many teacher answers on a test set (and under 90% of it) the teacher's figures there, and the students' agreement with it, are shown as '–' with the count."
    )
    bias_pair: BiasPairSpec | None = Field(None, description="The identity-term pair: false-positive rate per term and the score shift between the two sets.")

    @field_validator("length_buckets")
    @classmethod
    def _ascending(cls, v: list[int]) -> list[int]:
        if any(b <= a for a, b in zip(v, v[1:])) or any(x <= 0 for x in v):
            raise ValueError("length_buckets must be positive and strictly ascending, e.g. [100, 300, 1000]")
        return v

    @field_validator("identity_terms")
    @classmethod
    def _terms(cls, v: list[str] | None) -> list[str] | None:
        """Stripped, blanks and repeats (any case) left out, as augment.term_lists: a padded term
        made copies with the term glued into every gap between words."""
        if v is None:
            return None
        return clean_terms(v)

    @model_validator(mode="after")
    def _identity_default(self) -> "EvaluationSpec":
        # Identity slices belong to projects that declare them (or the bias pair that needs them).
        if self.identity_terms is None:
            self.identity_terms = list(DEFAULT_IDENTITY_TERMS) if self.bias_pair is not None else []
        return self
