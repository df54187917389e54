"""Term lists (identity terms, product brands ...) matched in text: whole words or phrases, any case.

The spec names the lists (``evaluation.identity_terms``, ``augment.term_lists``, a student's
``masked_terms`` or ``pairing_terms``); data and students both use them, so the matching lives here,
below both: ``swaps`` makes the counterfactual copies of ``graduate augment`` and the pairs of the
encoder's counterfactual logit pairing.
"""

from __future__ import annotations

import functools
import random
import re
import sys
import unicodedata
from typing import Sequence


@functools.cache
def _marks() -> str:
    """Every combining mark (Unicode category M) as character-class ranges. A mark belongs to the
    word it sits on, but is not ``\\w``: without it "हिंद" matched inside "हिंदू" (a vowel sign) and
    "cafe" inside a decomposed "café"."""
    ranges: list[str] = []
    start = None
    # Planes 2-13 hold CJK ideographs and unassigned code points, no marks: skipped, the scan is 4x faster.
    for code in [*range(0x20000), *range(0xE0000, sys.maxunicode + 2)]:
        is_mark = code <= sys.maxunicode and unicodedata.category(chr(code)).startswith("M")
        if is_mark and start is None:
            start = code
        elif not is_mark and start is not None:
            ranges.append(re.escape(chr(start)) + ("-" + re.escape(chr(code - 1)) if code - 1 > start else ""))
            start = None
    return "".join(ranges)


def _whole(alternatives: str) -> str:
    # Not inside a word on either side: as \b for a term that begins and ends with a letter, and a
    # term such as "LGBTQ+" or "#MeToo" matches too (\b needs a letter there); a combining mark
    # beside it is part of the word.
    return rf"(?<![\w{_marks()}])(" + alternatives + rf")(?![\w{_marks()}])"


def term_pattern(terms: Sequence[str]) -> re.Pattern[str]:
    """One regex for any of ``terms`` as a whole word or phrase, any case, longest first. Blank
    terms are left out: an empty alternative would match between every two words."""
    kept = sorted({t.strip() for t in terms if t.strip()}, key=len, reverse=True)
    if not kept:
        return re.compile(r"(?!)")  # matches nothing
    return re.compile(_whole("|".join(re.escape(t) for t in kept)), re.IGNORECASE)


def same_term(term: str, other: str) -> bool:
    """Whether ``other`` is ``term`` in any case, as the term patterns match (``İstanbul``, ``istanbul``)."""
    return re.fullmatch(re.escape(term.strip()), other.strip(), re.IGNORECASE) is not None


def _upper(text: str) -> str:
    # Letter by letter, and only where the capital is one letter: "ß".upper() is "SS", which the
    # term's own pattern no longer finds (the copy would fall outside the slice it was made for).
    return "".join(c.upper() if len(c.upper()) == 1 else c for c in text)


def _cased(term: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return _upper(term)
    if like[:1].isupper():
        return _upper(term[:1]) + term[1:]
    return term


def swaps(
    text: str, terms: Sequence[str], per_item: int, rng: random.Random, target: str | None = None, *, pattern: re.Pattern[str] | None = None
) -> list[tuple[str, str, str]]:
    """Up to ``per_item`` (new text, term taken out, term put in): every occurrence of the first
    term the text names is replaced by one other term of the list (only ``target``, when given:
    copies for that term's slice), in the case of the original (``Gay`` -> ``Muslim``).
    ``pattern``: ``term_pattern(terms)``, when the caller already has it."""
    pattern = pattern or term_pattern(terms)
    m = pattern.search(text)
    if m is None:
        return []
    found = m.group(1)
    # A term the text already names is never put in ("gay and straight" -> "straight and straight"),
    # the one taken out included; compared as the pattern matches, not by str.lower, which spells
    # "İstanbul" "i̇stanbul" and so swapped "istanbul" for itself.
    named = {n for n in pattern.findall(text)}
    others = [t.strip() for t in terms if t.strip() and not any(same_term(t.strip(), n) for n in named)]
    if target is not None:
        others = [t for t in others if same_term(t, target)]
    rng.shuffle(others)
    out = []
    for new in others[:per_item]:
        # Through the list's own pattern (longest first): a "gay" inside the listed phrase "gay men" stays.
        swapped = pattern.sub(lambda mm: _cased(new, mm.group(1)) if same_term(found, mm.group(1)) else mm.group(0), text)
        out.append((swapped, found.lower(), new))
    return out
