"""``label_words``: exactly one label's words appear in the answer, as whole words, any case."""

from __future__ import annotations

import re

from graduate.formats.base import ParsedAnswer, empty
from graduate.spec import ParseSpec


class LabelWordsFormat:
    fold = True

    def __init__(self, spec: ParseSpec, labels: list[str]):
        self.spec, self.labels = spec, list(labels)
        self.words = spec.words or {lab: [lab] for lab in labels}

    def parse(self, content: str | None) -> ParsedAnswer:
        bad = empty(content)
        if bad is not None:
            return bad
        lowered = (content or "").lower()
        found = [
            lab
            for lab, ws in self.words.items()
            if any(re.search(r"(?<![\w])%s(?![\w])" % re.escape(w.lower()), lowered) for w in ws)
        ]
        if len(found) == 1:
            return ParsedAnswer(found[0], found[0])
        if not found:
            return ParsedAnswer(None, None, "no label word in the answer")
        return ParsedAnswer(None, None, f"several labels in the answer: {found}")

    def answer_offset(self, text: str, parsed: ParsedAnswer) -> int | None:
        lowered = text.lower()
        starts = [
            m.start()
            for w in self.words.get(parsed.label or "", [parsed.label or ""])
            for m in [re.search(r"(?<![\w])%s(?![\w])" % re.escape(w.lower()), lowered)]
            if m is not None
        ]
        return min(starts) if starts else None

    def raw_forms(self) -> dict[str, list[str]]:
        return {lab: [w.lower() for w in self.words.get(lab, [])] for lab in self.labels}

    def render(self, label: str) -> list[str]:
        return [(self.words.get(label) or [label])[0]]
