"""``regex``: the label is the first group of a pattern, mapped through ``values``."""

from __future__ import annotations

import re

from graduate.formats.base import ParsedAnswer, empty, label_from_raw, value_forms, value_of
from graduate.spec import ParseSpec


class RegexFormat:
    fold = False

    def __init__(self, spec: ParseSpec, labels: list[str]):
        assert spec.pattern is not None  # checked by ParseSpec
        self.spec, self.labels, self.pattern = spec, list(labels), spec.pattern

    def parse(self, content: str | None) -> ParsedAnswer:
        bad = empty(content)
        if bad is not None:
            return bad
        m = re.search(self.pattern, content or "", re.DOTALL)
        if not m:
            return ParsedAnswer(None, None, "the pattern does not match the answer")
        raw = m.group(1)
        label = label_from_raw(raw, self.spec, self.labels)
        if label is None:
            return ParsedAnswer(None, raw, f"{raw!r} is not a known answer")
        return ParsedAnswer(label, raw)

    def answer_offset(self, text: str, parsed: ParsedAnswer) -> int | None:
        m = re.search(self.pattern, text, re.DOTALL)
        return m.start(1) if m else None

    def raw_forms(self) -> dict[str, list[str]]:
        return value_forms(self.spec, self.labels)

    def render(self, label: str) -> list[str]:
        """The raw value alone, then the pattern with its group filled in (best effort: callers keep
        the first candidate that parses back, and serve.answers covers patterns it cannot invert)."""
        raw = value_of(self.spec, label)
        filled = _fill_group(self.pattern, raw)
        return [raw] + ([filled] if filled is not None and filled != raw else [])


def _fill_group(pattern: str, value: str) -> str | None:
    """``TOPIC:\\s*(\\S+)`` with ``World`` -> ``TOPIC: World``: the first capturing group replaced by the
    value, whitespace classes by one space, anchors and flags dropped, escapes undone."""
    start = next((i for i, ch in enumerate(pattern) if ch == "(" and (i == 0 or pattern[i - 1] != "\\") and not pattern.startswith("(?", i)), None)
    if start is None:
        return None
    depth = 0
    for end in range(start, len(pattern)):
        ch = pattern[end]
        if ch == "\\":
            continue
        if ch == "(" and pattern[end - 1] != "\\":
            depth += 1
        elif ch == ")" and pattern[end - 1] != "\\":
            depth -= 1
            if depth == 0:
                break
    else:
        return None
    text = pattern[:start] + "\x00" + pattern[end + 1 :]
    text = re.sub(r"\(\?[a-zA-Z]+\)", "", text)
    text = re.sub(r"\\s[*+?]?", " ", text)
    text = text.replace("^", "").replace("$", "")
    text = re.sub(r"\\(.)", r"\1", text)
    if any(c in text for c in "[]{}*+?|"):
        return None  # not a plain pattern: no literal to fill in
    return " ".join(text.split()).replace("\x00", value).strip()
