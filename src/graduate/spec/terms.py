"""Term lists (identity terms, product brands ...) matched in text: whole words or phrases, any case.

The spec names the lists (``evaluation.identity_terms``, ``augment.term_lists``, a student's
``masked_terms`` or ``pairing_terms``); data and students both use them, so the matching lives here,
below both: ``swaps`` makes the counterfactual copies of ``graduate augment`` and the pairs of the
encoder's counterfactual logit pairing.
"""

from __future__ import annotations

import bisect
import functools
import random
import re
import sys
import unicodedata
from dataclasses import dataclass
from typing import Sequence


@functools.cache
def _category(prefix: str, but: str = "") -> str:
    """Every character of a Unicode category (``M``, ``Cf`` ...), but those of ``but``, as
    character-class ranges."""
    ranges: list[str] = []
    start = None
    # Planes 2-13 hold CJK ideographs and unassigned code points, no marks or format characters:
    # skipped, the scan is 4x faster.
    for code in [*range(0x20000), *range(0xE0000, sys.maxunicode + 2)]:
        inside = code <= sys.maxunicode and unicodedata.category(chr(code)).startswith(prefix) and chr(code) not in but
        if inside and start is None:
            start = code
        elif not inside and start is not None:
            ranges.append(re.escape(chr(start)) + ("-" + re.escape(chr(code - 1)) if code - 1 > start else ""))
            start = None
    return "".join(ranges)


def _marks() -> str:
    """Every combining mark (Unicode category M). A mark belongs to the word it sits on, but is not
    ``\\w``: without it "हिंद" matched inside "हिंदू" (a vowel sign) and "cafe" inside "cafe\\u0301"."""
    return _category("M")


# U+200B ZERO WIDTH SPACE is a format character (Cf), not \s, but it separates words by intent:
# "gay\u200bman" is two words. It folds as white space; left out with the others, it made "gayman",
# where neither "gay" nor "gay man" was found.
_ZWSP = "\u200b"
_BLANK = rf"\s{_ZWSP}"  # inside a character class: what folds to a space


@functools.cache
def _format() -> re.Pattern[str]:
    # Invisible format characters (Cf but the zero-width space: zero-width joiner and non-joiner,
    # soft hyphen, word joiner, bidi marks, BOM): not \w, so one inside a word split it
    # ("gay\u200dish" named "gay", "g\u00aday" not). They are left out.
    return re.compile(f"[{_category('Cf', _ZWSP)}]+")


_SPACE = re.compile(f"[{_BLANK}]+")


@functools.cache
def _pieces() -> re.Pattern[str]:
    # A run of white space with the format characters around it (one " " of the folded text), or a
    # word: everything up to the next white space.
    cf = _category("Cf", _ZWSP)
    return re.compile(rf"(?P<gap>[{_BLANK}{cf}]*[{_BLANK}][{_BLANK}{cf}]*)|[^{_BLANK}]+")


def fold(text: str) -> str:
    """``text`` as terms are matched in it: format characters (Cf) left out, composed (NFC: "e" +
    U+0301 is "é"), every run of white space (tab, NBSP, newline, zero-width space) one space. Case
    is left to the pattern (``re.IGNORECASE``), as ``same_term`` compares."""
    return _SPACE.sub(" ", unicodedata.normalize("NFC", _format().sub("", text)))


def _whole(alternatives: str) -> str:
    # Not inside a word on either side: as \b for a term that begins and ends with a letter, and a
    # term such as "LGBTQ+" or "#MeToo" matches too (\b needs a letter there); a combining mark
    # beside it is part of the word.
    return rf"(?<![\w{_marks()}])(" + alternatives + rf")(?![\w{_marks()}])"


def _term(term: str) -> str:
    return fold(term).strip()


@dataclass(frozen=True)
class TermPattern:
    """Any of a list's terms as a whole word or phrase, any case, in text as ``fold`` gives it:
    "café" names "cafe\\u0301", "gay man" names "gay\\u00a0 man"."""

    regex: re.Pattern[str]  # over folded text
    # The same terms with any run of white space between their words: over text that folds only its
    # white space (composed, no format characters), it finds what ``regex`` finds in the folded text.
    spaced: re.Pattern[str] | None = None

    def search(self, text: str) -> re.Match[str] | None:
        """The first term ``text`` names (its offsets are into ``fold(text)``, not ``text``)."""
        return self.regex.search(fold(text))


def term_pattern(terms: Sequence[str]) -> TermPattern:
    """A pattern for any of ``terms`` as a whole word or phrase, any case, longest first. Blank
    terms are left out: an empty alternative would match between every two words."""
    kept = sorted({_term(t) for t in terms if _term(t)}, key=len, reverse=True)
    if not kept:
        return TermPattern(re.compile(r"(?!)"), re.compile(r"(?!)"))  # matches nothing
    return TermPattern(
        re.compile(_whole("|".join(re.escape(t) for t in kept)), re.IGNORECASE),
        re.compile(_whole("|".join(f"[{_BLANK}]+".join(re.escape(w) for w in t.split(" ")) for t in kept)), re.IGNORECASE),
    )


def same_term(term: str, other: str) -> bool:
    """Whether ``other`` is ``term`` in any case, as the term patterns match (``İstanbul``,
    ``istanbul``; ``café`` composed or not)."""
    return re.fullmatch(re.escape(_term(term)), _term(other), re.IGNORECASE) is not None


def clean_terms(terms: Sequence[str]) -> list[str]:
    """``terms`` stripped, with blanks (nothing left to match: "", " ", a lone zero-width space)
    and repeats (``same_term``) left out: a padded term made copies with it glued into every gap
    between words, and "Muslim" and "muslim" put in made one text twice."""
    out: list[str] = []
    for t in (t.strip() for t in terms):
        if _term(t) and not any(same_term(o, t) for o in out):
            out.append(t)
    return out


@dataclass(frozen=True)
class _Piece:
    start: int  # in the text
    end: int
    folded_start: int  # in fold(text)
    folded_end: int


def _view(text: str) -> tuple[str, list[_Piece]]:
    """``fold(text)`` and the pieces it is made of: each a span of ``text`` and the span of the
    folded text it became (a run of white space, a letter with its marks, a format character left
    out as an empty piece). A term found in the folded text is replaced in ``text`` piece by piece,
    so everything outside it stays as it was, byte for byte.

    Text already composed and without format characters (nearly all) folds only its white space:
    its pieces are the runs of white space and the words between them, found by the regex alone.
    Reading it letter by letter cost ~20 ms for a 5,000-character comment, on every single-item
    prediction of a student that masks terms."""
    return _view_plain(text) if _plain(text) else _view_letters(text)


def _plain(text: str) -> bool:
    """Whether folding ``text`` changes only its white space (a zero-width space is white space
    here): composed, no format characters left out."""
    return unicodedata.is_normalized("NFC", text) and _format().search(text) is None


def _view_plain(text: str) -> tuple[str, list[_Piece]]:
    # A word is its own folded text, so a match inside one (after a bracket, say) keeps the rest of
    # the word as written: the same bytes.
    pieces, parts, folded = [], [], 0
    for m in _pieces().finditer(text):
        f = " " if m.group("gap") is not None else m.group()
        pieces.append(_Piece(m.start(), m.end(), folded, folded + len(f)))
        parts.append(f)
        folded += len(f)
    return "".join(parts), pieces


def _view_letters(text: str) -> tuple[str, list[_Piece]]:
    spans: list[tuple[int, int, str]] = []
    for m in _pieces().finditer(text):
        if m.group("gap") is not None:
            spans.append((m.start(), m.end(), " "))
            continue
        kept = [(i, c) for i, c in enumerate(m.group(), m.start()) if not _format().fullmatch(c)]
        # A letter and the marks after it compose as one ("e" + U+0301 is "é"), and so do a few
        # letters (Hangul jamo); a format character between two of them stays inside their piece.
        clusters: list[list[tuple[int, str]]] = []
        for i, c in kept:
            if clusters and (unicodedata.combining(c) or len(_nfc(_chars(clusters[-1]) + c)) < len(_nfc(_chars(clusters[-1]))) + len(_nfc(c))):
                clusters[-1].append((i, c))
            else:
                clusters.append([(i, c)])
        word = _nfc("".join(c for _, c in kept))
        if "".join(_nfc(_chars(cl)) for cl in clusters) != word:  # never seen: then the word is one piece
            clusters = [kept] if kept else []
        at = m.start()
        for cl in clusters:
            if cl[0][0] > at:
                spans.append((at, cl[0][0], ""))
            spans.append((cl[0][0], cl[-1][0] + 1, _nfc(_chars(cl))))
            at = cl[-1][0] + 1
        if m.end() > at:
            spans.append((at, m.end(), ""))
    pieces, folded = [], 0
    for a, b, f in spans:
        pieces.append(_Piece(a, b, folded, folded + len(f)))
        folded += len(f)
    return "".join(f for _, _, f in spans), pieces


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _chars(cluster: list[tuple[int, str]]) -> str:
    return "".join(c for _, c in cluster)


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
    text: str, terms: Sequence[str], per_item: int, rng: random.Random, target: str | None = None, *, pattern: TermPattern | None = None
) -> list[tuple[str, str, str]]:
    """Up to ``per_item`` (new text, term taken out, term put in; both as ``terms`` spell them):
    every occurrence of the first term the text names is replaced by one other term of the list
    (only ``target``, when given: copies for that term's slice), in the case of the original
    (``Gay`` -> ``Muslim``).
    ``pattern``: ``term_pattern(terms)``, when the caller already has it.

    Terms are found in the folded text (``fold``) and replaced in ``text`` itself: a copy differs
    from its text only where a term was."""
    pattern = pattern or term_pattern(terms)
    if pattern.search(text) is None:
        return []
    folded, pieces = _view(text)
    matches = list(pattern.regex.finditer(folded))
    found = matches[0].group(1)
    # A term the text already names is never put in ("gay and straight" -> "straight and straight"),
    # the one taken out included; compared as the pattern matches, not by str.lower, which spells
    # "İstanbul" "i̇stanbul" and so swapped "istanbul" for itself.
    named = {m.group(1) for m in matches}
    others = [t.strip() for t in terms if _term(t) and not any(same_term(t, n) for n in named)]
    if target is not None:
        others = [t for t in others if same_term(t, target)]
    rng.shuffle(others)
    # Through the list's own pattern (longest first): a "gay" inside the listed phrase "gay men" stays.
    taken = [m for m in matches if same_term(found, m.group(1))]
    # The term taken out as the list spells it, as the one put in is: the lineage and the report name
    # terms of the spec. The text's spelling lower-cased was neither: "İzmirli".lower() is "i̇zmirli"
    # (an "i" and a combining dot).
    old = next((t.strip() for t in terms if _term(t) and same_term(t, found)), found)
    return [(_replace(text, folded, pieces, [(m, _cased(new, m.group(1))) for m in taken]), old, new) for new in others[:per_item]]


def mask_terms(text: str, pattern: TermPattern, placeholder: str) -> str:
    """``text`` with every term ``pattern`` finds replaced by ``placeholder``, the rest as it was."""
    if pattern.spaced is not None and _plain(text):  # one regex pass: a student masks every text it reads
        return pattern.spaced.sub(lambda _: placeholder, text)
    if pattern.search(text) is None:
        return text
    folded, pieces = _view(text)
    return _replace(text, folded, pieces, [(m, placeholder) for m in pattern.regex.finditer(folded)])


def _replace(text: str, folded: str, pieces: list[_Piece], replacements: list[tuple[re.Match[str], str]]) -> str:
    """``text`` with each match in ``folded`` (in order) replaced: the pieces it spans go, the rest
    of ``text`` stays byte for byte."""
    # The pieces that are not empty tile the folded text: the one a match begins in, and ends in.
    solid = [p for p in pieces if p.folded_end > p.folded_start]
    starts, ends = [p.folded_start for p in solid], [p.folded_end for p in solid]
    parts, at = [], 0
    for m, put in replacements:
        first, last = solid[bisect.bisect_right(starts, m.start(1)) - 1], solid[bisect.bisect_left(ends, m.end(1))]
        # A match begins and ends at a piece's edge, but in a word the pieces could not split
        # (none known): there the word's folded text around the term is kept.
        parts += [text[at : first.start], folded[first.folded_start : m.start(1)], put, folded[m.end(1) : last.folded_end]]
        at = last.end
    parts.append(text[at:])
    return "".join(parts)
