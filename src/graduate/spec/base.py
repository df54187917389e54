"""The base of every spec section: unknown fields are errors (a typo never falls back to a default)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

SPEC_FILENAME = "graduate.yaml"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)
