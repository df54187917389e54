"""The students to train."""

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


class StudentSpec(_Model):
    """One student to train."""

    kind: str = Field(description="A student kind from the registry (`graduate students list`; params: `graduate students show KIND`).")
    name: str | None = Field(None, description="A name for this student; default: the kind.")
    params: dict[str, Any] = Field(default_factory=dict, description="Options of that student kind.")

    @property
    def label(self) -> str:
        return self.name or self.kind
