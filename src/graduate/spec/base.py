"""The base of every spec section: unknown fields are errors (a typo never falls back to a default)."""

from __future__ import annotations

import re
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict

SPEC_FILENAME = "graduate.yaml"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


def _no_nul(path: Path) -> Path:
    # No file system takes a NUL in a name: resolving the path later was an internal error.
    if "\x00" in str(path):
        raise ValueError("a file path cannot hold a NUL character (\\0); write the file's name")
    return path


SpecPath = Annotated[Path, AfterValidator(_no_nul)]
"""A file the spec names, relative to the project directory."""


_BOUNDS = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))


def type_name(annotation: Any) -> str:
    """A field's type as `graduate spec-help` and `graduate students show` print it: `int | None`,
    `float > 0 | Literal['auto']`, `list[TestSetSpec]`; never pydantic's internal repr."""
    origin, args = get_origin(annotation), get_args(annotation)
    if annotation is type(None):
        return "None"
    if origin in (Union, UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is Annotated:
        bounds = [
            f"{op} {getattr(c, attr)}"
            for meta in args[1:]
            for c in getattr(meta, "metadata", [meta])
            for attr, op in _BOUNDS
            if getattr(c, attr, None) is not None
        ]
        return " ".join([type_name(args[0]), *bounds])
    if origin is Literal:
        return f"Literal[{', '.join(map(repr, args))}]"
    if origin is not None and args:
        return f"{type_name(origin)}[{', '.join(type_name(a) for a in args)}]"
    if isinstance(annotation, type):
        return annotation.__name__
    return re.sub(r"\btyping\.", "", str(annotation))
