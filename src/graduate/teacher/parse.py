"""Turn a teacher's raw answer into a label, never guessing silently.

An answer that cannot be read, or reads as no known label, comes back with ``label=None`` and the
reason; callers store it as unparseable and count it.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any

from graduate.spec import ParseSpec

_FENCE = re.compile(r"```[a-zA-Z]*\s*(.*?)```", re.DOTALL)
_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


@dataclass
class ParsedAnswer:
    label: str | None
    raw: str | None = None
    error: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)


def _as_mapping(text: str) -> dict[str, Any] | None:
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for cand in candidates:
        m = _OBJECT.search(cand)
        if not m:
            continue
        blob = m.group(0)
        for loader in (json.loads, ast.literal_eval):
            try:
                value = loader(blob)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
            if isinstance(value, dict):
                return value
    return None


def _key_fallback(text: str, key: str) -> str | None:
    # Chain-of-thought answers often break dict syntax (unquoted reasons); the key's value still reads.
    m = re.search(r"""["']?%s["']?\s*[:=]\s*["']?([A-Za-z0-9_.\-]+)""" % re.escape(key), text)
    return m.group(1) if m else None


_FIELD = re.compile(r"""^[ \t]*["']?([A-Za-z_][A-Za-z0-9_]*)["']?[ \t]*:[ \t]*""", re.MULTILINE)


def _fields_fallback(text: str, key: str) -> dict[str, Any]:
    """The other keys of a dict-like answer whose syntax is broken (unquoted reasons), one per line:
    each value runs to the next key's line; quotes, commas and braces around it are dropped."""
    matches = list(_FIELD.finditer(text))
    out: dict[str, Any] = {}
    for m, nxt in zip(matches, matches[1:] + [None]):
        name = m.group(1)
        if name == key:
            continue
        value = text[m.end() : nxt.start() if nxt is not None else len(text)]
        value = value.strip().rstrip("`").strip().rstrip("}").strip().rstrip(",").strip().strip("\"'").strip()
        if value:
            out[name] = value
    return out


def _to_label(raw: str, spec: ParseSpec, labels: list[str]) -> str | None:
    raw = raw.strip()
    if spec.values:
        if raw in spec.values:
            return spec.values[raw]
        # 1 and 1.0 and "1" are the same answer
        try:
            as_num = float(raw)
        except ValueError:
            return None
        for k, v in spec.values.items():
            try:
                if float(k) == as_num:
                    return v
            except ValueError:
                continue
        return None
    return raw if raw in labels else None


def parse_answer(content: str | None, spec: ParseSpec, labels: list[str]) -> ParsedAnswer:
    """Read one answer. Never raises on bad answers: the reason is in ``error``."""
    if content is None or not content.strip():
        return ParsedAnswer(None, None, "empty answer")
    if spec.kind == "json_key":
        assert spec.key is not None  # checked by ParseSpec
        mapping = _as_mapping(content)
        fields: dict[str, Any] = {}
        if mapping is not None and spec.key in mapping:
            value = mapping[spec.key]
            fields = {k: v for k, v in mapping.items() if k != spec.key}
            raw = str(int(value)) if isinstance(value, bool) else str(value)
        else:
            raw = _key_fallback(content, spec.key)
            if raw is None:
                return ParsedAnswer(None, None, f"no {spec.key!r} in the answer")
            fields = _fields_fallback(content, spec.key)
        label = _to_label(raw, spec, labels)
        if label is None:
            return ParsedAnswer(None, raw, f"{spec.key}={raw!r} is not a known answer", fields)
        return ParsedAnswer(label, raw, None, fields)
    if spec.kind == "regex":
        assert spec.pattern is not None
        m = re.search(spec.pattern, content, re.DOTALL)
        if not m:
            return ParsedAnswer(None, None, "the pattern does not match the answer")
        raw = m.group(1)
        label = _to_label(raw, spec, labels)
        if label is None:
            return ParsedAnswer(None, raw, f"{raw!r} is not a known answer")
        return ParsedAnswer(label, raw)
    # label_words: exactly one label's words must appear (as whole words)
    words = spec.words or {lab: [lab] for lab in labels}
    lowered = content.lower()
    found = [
        lab
        for lab, ws in words.items()
        if any(re.search(r"(?<![\w])%s(?![\w])" % re.escape(w.lower()), lowered) for w in ws)
    ]
    if len(found) == 1:
        return ParsedAnswer(found[0], found[0])
    if not found:
        return ParsedAnswer(None, None, "no label word in the answer")
    return ParsedAnswer(None, None, f"several labels in the answer: {found}")
