"""``label_words``: exactly one label's words appear in the answer, as whole words, any case; a
word right after a negation ("not bad", "non-toxic") makes the answer unreadable, never the
negated label (a word inside a longer label word, "toxic" in "non-toxic", counts as that word).
Answer and words are matched in one Unicode form (NFC: "e" + U+0301 is "é") without invisible
format characters (Cf: a zero-width space, a soft hyphen, a BOM), as ``multi_label`` matches them,
and lower-cased, with the dotted capital İ as "i" (``str.lower`` makes it an i and a combining dot,
so a word "İyi" never matched the answer "iyi"); the dotless ı stays a letter of its own.

Unlike ``graduate.spec.terms``, a zero-width space is read through, not as a space: in a teacher's
short answer one inside a word ("to\u200bxic") is a tokenizer's, and the word is still meant; in the
texts people write (what term lists match) it separates words."""

from __future__ import annotations

import re
import unicodedata

from graduate.formats.base import ParsedAnswer, empty
from graduate.spec import ParseSpec


# A negation right before a label word: "not bad", "isn't toxic" (any apostrophe), "never spam", "no toxicity", "non-toxic".
_NEGATION = r"(?:\bnot|\bno|\bnever|\bwithout|n['\u2019\u02bc]t|\bnon)(?:\s+(?:a|an|at\s+all|really|very|exactly))?[\s-]+$"


def _fold(text: str) -> str:
    """``text`` as words are matched in it: format characters left out, composed, lowercased (İ,
    and an i with a combining dot above, as "i")."""
    composed = unicodedata.normalize("NFC", "".join(c for c in text if unicodedata.category(c) != "Cf"))
    return composed.replace("\u0130", "i").lower().replace("i\u0307", "i")


def _raw_offset(text: str, folded: int) -> int:
    """The index in ``text`` of the character that is ``_fold(text)[folded]`` (the first of those
    it is composed of): each character adds none (Cf) or more to the folded text, never takes away."""
    lo, hi = 0, len(text) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if len(_fold(text[: mid + 1])) > folded:
            hi = mid
        else:
            lo = mid + 1
    return lo


class LabelWordsFormat:
    fold = True

    def __init__(self, spec: ParseSpec, labels: list[str]):
        self.spec, self.labels = spec, list(labels)
        self.words = spec.words or {lab: [lab] for lab in labels}

    def parse(self, content: str | None) -> ParsedAnswer:
        bad = empty(content)
        if bad is not None:
            return bad
        lowered = _fold(content or "")
        hits = [
            (lab, w, m.start(), m.end())
            for lab, ws in self.words.items()
            for w in ws
            for m in re.finditer(r"(?<![\w])%s(?![\w])" % re.escape(_fold(w)), lowered)
        ]
        # A word inside a longer label word ("toxic" in "non-toxic") is that longer word's, not its own.
        hits = [h for h in hits if not any(o[2] <= h[2] and h[3] <= o[3] and o[3] - o[2] > h[3] - h[2] for o in hits)]
        found = [lab for lab in self.words if any(h[0] == lab for h in hits)]
        negated = [h[1] for h in hits if re.search(_NEGATION, lowered[max(0, h[2] - 40) : h[2]])]
        if negated:  # "not bad", "non-toxic": the word is there, its label is not what the answer says
            return ParsedAnswer(None, None, f"the answer negates a label word ({negated[0]!r}); ask for the label alone")
        if len(found) == 1:
            return ParsedAnswer(found[0], found[0])
        if not found:
            return ParsedAnswer(None, None, "no label word in the answer")
        return ParsedAnswer(None, None, f"several labels in the answer: {found}")

    def answer_offset(self, text: str, parsed: ParsedAnswer) -> int | None:
        lowered = _fold(text)
        starts = [
            m.start()
            for w in self.words.get(parsed.label or "", [parsed.label or ""])
            for m in [re.search(r"(?<![\w])%s(?![\w])" % re.escape(_fold(w)), lowered)]
            if m is not None
        ]
        return _raw_offset(text, min(starts)) if starts else None

    def raw_forms(self) -> dict[str, list[str]]:
        return {lab: [_fold(w) for w in self.words.get(lab, [])] for lab in self.labels}

    def render(self, label: str) -> list[str]:
        return [(self.words.get(label) or [label])[0]]
