"""Reading graduate.yaml: errors name the file and every field that is wrong."""

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
from graduate.spec.project import ProjectSpec


class UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error naming both
    lines (plain YAML keeps the last one silently: a second `task:` block would hide the first)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base loader names it
                continue
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"{key!r} is given twice (lines {first + 1} and {key_node.start_mark.line + 1}); keep one", key_node.start_mark
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def read_yaml(text: str) -> Any:
    """Parse a spec's YAML text with :class:`UniqueKeyLoader`."""
    return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for i, part in enumerate(loc):
        if part == "[key]":  # pydantic's mark for a mapping's key: "gold_values[0].[key]" reads as "gold_values key 0"
            continue
        key = i + 1 < len(loc) and loc[i + 1] == "[key]"
        if key:
            out += f" key {part!r}" if not isinstance(part, int) else f" key {part}"
        else:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _yaml_hint(err: dict[str, Any]) -> str:
    """A string field given a value YAML did not read as text: say so, and to quote it."""
    value = err.get("input")
    if err["type"] != "string_type" or not isinstance(value, (bool, int, float)) and value is not None:
        return ""
    kind = "null" if value is None else type(value).__name__
    shown = {True: "true", False: "false", None: "null"}.get(value, repr(value)) if isinstance(value, bool) or value is None else repr(value)
    return f" (YAML read it as {kind} {shown}: words such as yes/no/on/off/null and numbers need quotes, e.g. \"yes\", \"0\")"


def load_spec(path: Path | str) -> tuple[ProjectSpec, Path]:
    """Read and validate a spec. ``path`` is the spec file or the project directory.

    Returns the spec (with relative paths resolved against the project directory) and that directory.
    """
    path = Path(path)
    spec_path = path / SPEC_FILENAME if path.is_dir() else path
    if not spec_path.exists():
        raise SpecError(f"no {SPEC_FILENAME} here; create one with `graduate init {path}`", path=spec_path)
    try:
        raw = read_yaml(spec_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "YAML"
        raise SpecError(f"not valid YAML ({where}): {getattr(exc, 'problem', exc)}", path=spec_path) from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path=spec_path) from None
    if not isinstance(raw, dict):
        raise SpecError("must be a YAML mapping with at least task: and teacher:", path=spec_path)
    spec = parse_spec(raw, path=spec_path)
    root = spec_path.parent.resolve()
    for d in spec.data:
        d.path = (root / d.path).resolve()
    for li in spec.label_imports:
        li.path = (root / li.path).resolve()
    for rv in spec.reviews:
        rv.path = (root / rv.path).resolve()
    for log in spec.teacher_logs:
        log.input = (root / log.input).resolve()
        if log.output is not None:
            log.output = (root / log.output).resolve()
    return spec, root


def parse_spec(raw: dict[str, Any], *, path: Path | str | None = None) -> ProjectSpec:
    """Validate a spec given as a mapping; errors name the field and what is allowed."""
    try:
        return ProjectSpec.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = _format_loc(tuple(err["loc"]))
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown field (misspelt?); see `graduate spec-help` for the fields allowed"
            elif err["type"] == "missing":
                msg = "required field is missing"
            msg += _yaml_hint(err)
            problems.append(SpecError(msg, path=path, field=loc or None))
        # Every problem, one line each: fixing them one run at a time is the slow way.
        raise SpecError.several(problems) from None


def spec_hash(spec: ProjectSpec) -> str:
    return hashlib.sha256(spec.model_dump_json().encode()).hexdigest()
