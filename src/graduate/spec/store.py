"""The database."""

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


class StoreSpec(_Model):
    """Where the project's data lives."""

    url: str | None = Field(
        None,
        description="SQLAlchemy URL; default sqlite:///PROJECT/.graduate/graduate.db (a relative SQLite path is relative to this "
        "file). The environment variable GRADUATE_STORE_URL overrides it.",
    )
