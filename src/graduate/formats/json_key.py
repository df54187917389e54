"""``json_key``: the label is the value of one key of a JSON object (``{"is_bad": 1}``), mapped
through ``values``. Chain-of-thought answers often break dict syntax; the key's value and the other
fields (the reasons) are still read line by line."""

from __future__ import annotations

import json
import re
from typing import Any

from graduate.formats.base import ParsedAnswer, empty, fenced_candidates, keys_named, label_from_raw, literal, value_forms, value_of
from graduate.spec import ParseSpec

_BOOL_DIGITS = {"true": "1", "false": "0"}
_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def _as_mapping(text: str) -> tuple[dict[str, Any], str] | None:
    """The answer's JSON (or Python dict) object and the text it was read from."""
    for cand in fenced_candidates(text):
        m = _OBJECT.search(cand)
        if not m:
            continue
        value = literal(m.group(0), dict)
        if value is not None:
            return value, m.group(0)
    return None


def _as_raw(value: Any) -> str:
    """A JSON value as raw answer text: a boolean in JSON's spelling (true), else its ``str``."""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _nested_values(value: Any, key: str) -> list[str]:
    """``key``'s values in the objects nested inside ``value`` (``{"details": {"is_bad": 0}}``)."""
    out: list[str] = []
    children = list(value.values()) if isinstance(value, dict) else value if isinstance(value, list) else []
    for child in children:
        if isinstance(child, dict):
            out += [_as_raw(child[k]) for k in keys_named(child, key)]
        out += _nested_values(child, key)
    return out


_WORD = re.compile(r"[A-Za-z0-9_.\-]+")


def _key_values(text: str, key: str) -> list[tuple[str | None, str]]:
    """Each ``key: value`` in any syntax, as (the quoted value whole to its closing quote on the
    line, or None; its first word): 'not spam' is a label of two words, '1 (rude)' is 1."""
    pattern = r"""["']?%s[ \t]*["']?\s*[:=]\s*(?:"([^"\n]*)"|'([^'\n]*)'|([A-Za-z0-9_.\-]+))""" % re.escape(key)
    out: list[tuple[str | None, str]] = []
    for m in re.finditer(pattern, text):
        quoted = m.group(1) if m.group(1) is not None else m.group(2)
        word = _WORD.match(quoted) if quoted is not None else None
        first = m.group(3) if quoted is None else word.group(0) if word else None
        if first is not None or quoted:
            out.append((quoted, first or ""))
    return out


_FIELD = re.compile(r"""^[ \t]*["']?[ \t]*([A-Za-z_][A-Za-z0-9_]*)[ \t]*["']?[ \t]*:[ \t]*""", re.MULTILINE)


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



def _raw_value(raw: str) -> Any:
    """'1' -> 1, '0.5' -> 0.5, 'true' -> True; other text stays a string (as it would in the JSON)."""
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return value if isinstance(value, (int, float, bool)) else raw


class JsonKeyFormat:
    fold = False

    def __init__(self, spec: ParseSpec, labels: list[str]):
        assert spec.key is not None  # checked by ParseSpec
        self.spec, self.labels, self.key = spec, list(labels), spec.key

    def parse(self, content: str | None) -> ParsedAnswer:
        bad = empty(content)
        if bad is not None:
            return bad
        assert content is not None
        found_mapping = _as_mapping(content)
        fields: dict[str, Any] = {}
        keys = keys_named(found_mapping[0], self.key) if found_mapping is not None else []
        if found_mapping is not None and keys:
            mapping, source = found_mapping
            fields = {k: v for k, v in mapping.items() if k not in keys}
            raw = _as_raw(mapping[keys[0]])
            # The key written twice in the object (" is_bad" beside "is_bad") with values of two
            # labels: neither is guessed at, and the answer names both.
            other = next((k for k in keys[1:] if self._label(_as_raw(mapping[k])) != self._label(raw)), None)
            if other is not None:
                said = [raw, _as_raw(mapping[other])]
                return ParsedAnswer(None, raw, f"keys {keys[0]!r} and {other!r} both give {self.key}, with different values {said}", fields)
            # What else gives the key: the text around the object and objects nested in it; the
            # key named inside a field's text ("reason": "not is_bad: 1") is no second answer.
            before, _, after = content.partition(source)
            around = [[self._reading(q, w) for q, w in _key_values(part, self.key)] for part in (before, after)]
            given = around[0] + [raw] + _nested_values(mapping, self.key) + around[1]
        else:
            # Chain-of-thought answers often break dict syntax (unquoted reasons); the key's value still reads.
            found = [self._reading(q, w) for q, w in _key_values(content, self.key)]
            if not found:
                return ParsedAnswer(None, None, f"no {self.key!r} in the answer")
            raw = found[0]
            fields = _fields_fallback(content, self.key)
            given = found
        label = self._label(raw)
        if label is None:
            return ParsedAnswer(None, raw, f"{self.key}={raw!r} is not a known answer", fields)
        # An answer that gives the key twice, with values of different labels ({"is_bad": 1} ...
        # "actually, {"is_bad": 0}"), is not guessed at: neither the first nor the last is the answer.
        said = dict.fromkeys(v for v in given if self._label(v) is not None)
        labels = {self._label(v) for v in said}
        if len(labels) > 1:
            return ParsedAnswer(None, raw, f"the answer gives {self.key} more than once, with different values {list(said)}", fields)
        return ParsedAnswer(label, raw, None, fields)

    def _reading(self, quoted: str | None, word: str) -> str:
        """A value read outside JSON: the quoted text whole when it is a known answer, else its first word."""
        return quoted if quoted is not None and self._label(quoted) is not None else word

    def _label(self, raw: str) -> str | None:
        """The label a raw value means. A boolean (JSON true, Python True, or the word in broken
        syntax) is read through the value (or label) of its name in any case, {"true": bad}, else
        as 1 or 0, {"1": bad}: the values name one of those, never JSON's own spelling alone."""
        label = label_from_raw(raw, self.spec, self.labels)
        word = raw.strip().lower()
        if label is not None or word not in _BOOL_DIGITS:
            return label
        names = list(self.spec.values) if self.spec.values else self.labels
        named = next((n for n in names if n.strip().lower() == word), _BOOL_DIGITS[word])
        return label_from_raw(named, self.spec, self.labels)

    def answer_offset(self, text: str, parsed: ParsedAnswer) -> int | None:
        m = re.search(r"""["']?%s[ \t]*["']?\s*[:=]\s*["']?""" % re.escape(self.key), text)
        return m.end() if m else None

    def raw_forms(self) -> dict[str, list[str]]:
        return value_forms(self.spec, self.labels)

    def render(self, label: str) -> list[str]:
        raw = value_of(self.spec, label)
        # A number or boolean as JSON has it ({"is_bad": 1}); else the raw text as a string.
        return [json.dumps({self.key: _raw_value(raw)}), json.dumps({self.key: raw})]
