"""The task-format seam: how a task's answer looks in the teacher's text.

One protocol, one file per format (``json_key``, ``regex``, ``label_words``; multi-label and JSON
extraction are the next implementations). A format parses an answer (with the reason when it
fails), says where in the answer text the label starts and which strings mean each label (so
soft labels can be read from the answer token's logprobs), and renders a label back as the teacher
would answer it. Nothing else asks which format a task uses: ``answer_format(task.parse, labels)``.
"""

from __future__ import annotations

import ast
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from graduate.spec import ParseSpec


@dataclass
class ParsedAnswer:
    label: str | None
    raw: str | None = None
    error: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)


class AnswerFormat(Protocol):
    spec: ParseSpec
    labels: list[str]
    # Whether answers are matched case-insensitively (label words) when reading logprobs.
    fold: bool

    def parse(self, content: str | None) -> ParsedAnswer:
        """Read one answer; never raises on a bad answer (the reason is in ``error``)."""
        ...

    def answer_offset(self, text: str, parsed: ParsedAnswer) -> int | None:
        """Where in ``text`` the parsed answer starts (to find its token among the logprobs)."""
        ...

    def raw_forms(self) -> dict[str, list[str]]:
        """For each label, the answer strings that mean it."""
        ...

    def render(self, label: str) -> list[str]:
        """Answers the teacher would give for ``label``, preferred first (callers check them by
        parsing back)."""
        ...


def label_from_raw(raw: str, spec: ParseSpec, labels: list[str]) -> str | None:
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




def keys_named(mapping: dict[Any, Any], key: str) -> list[str]:
    """The keys of ``mapping`` that are ``key`` written with white space around it or without
    (``" is_bad "``), in the object's order. No other spelling is taken (another case, a space
    inside): that would be a guess at what the answer meant."""
    return [k for k in mapping if isinstance(k, str) and k.strip() == key.strip()]


def value_forms(spec: ParseSpec, labels: list[str]) -> dict[str, list[str]]:
    """Raw values per label: from ``values`` when given, else each label's own name."""
    if spec.values:
        forms: dict[str, list[str]] = {lab: [] for lab in labels}
        for raw, lab in spec.values.items():
            forms[lab].append(raw)
        return forms
    return {lab: [lab] for lab in labels}


def value_of(spec: ParseSpec, label: str) -> str:
    """The first raw value that means ``label`` (the label itself when no ``values`` map it)."""
    return next((raw for raw, lab in spec.values.items() if lab == label), label)


_FENCE = re.compile(r"```[a-zA-Z]*\s*(.*?)```", re.DOTALL)


def literal(blob: str, kind: type | tuple[type, ...] = object) -> Any | None:
    """``blob`` read as JSON, else as a Python literal (models write both), when it is a ``kind``;
    None when it is neither, or another type."""
    for loader in (json.loads, ast.literal_eval):
        try:
            value = loader(blob)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if isinstance(value, kind):
            return value
    return None


def token_probability(logprob: Any) -> float:
    """A token's probability from the logprob a server reported: 0 for what is not a real number
    or is NaN (fp16 overflow in a server gives NaN, serialised as the JSON word NaN), capped at 1
    (a logprob above 0 is rounding, or a broken server: ``exp`` of 1000 overflows)."""
    if isinstance(logprob, bool) or not isinstance(logprob, (int, float)) or math.isnan(logprob):
        return 0.0
    return math.exp(min(float(logprob), 0.0))


_QUOTES = "\"'`"


def word_norm(piece: str, fold: bool) -> str:
    """A token's text as an answer word: stripped of white space and quotes, any case with ``fold``."""
    piece = piece.strip().strip(_QUOTES)
    return piece.lower() if fold else piece


def label_of_piece(piece: str, forms: dict[str, list[str]], fold: bool, whole: bool = False) -> str | None:
    """The one label whose answer ``piece`` (an alternative token, from the answer's start) begins.
    ``whole``: the chosen token held the whole answer, so an alternative that is one label's whole
    answer ("ok") is that label, not the start of a longer one ("okay")."""
    piece = word_norm(piece, fold)
    if not piece:
        return None
    exact = {lab for lab, raws in forms.items() if piece in raws}
    if whole and len(exact) == 1:
        return exact.pop()
    hits = set()
    for lab, raws in forms.items():
        for r in raws:
            # a partial token of a longer answer ("tox" of "toxic"), or the whole answer followed
            # by punctuation ("1}" or "1,")
            if r.startswith(piece) or (piece.startswith(r) and not piece[len(r) : len(r) + 1].isalnum()):
                hits.add(lab)
    return hits.pop() if len(hits) == 1 else None


def fenced_candidates(text: str) -> list[str]:
    """Where a JSON answer may stand: each code fence's body, then the whole text."""
    return [cand for _, cand in fenced_spans(text)]


def fenced_spans(text: str) -> list[tuple[int, str]]:
    """``fenced_candidates`` with where each starts in ``text``."""
    return [(m.start(1), m.group(1)) for m in _FENCE.finditer(text)] + [(0, text)]


def empty(content: str | None) -> ParsedAnswer | None:
    if content is None or not content.strip():
        return ParsedAnswer(None, None, "empty answer")
    return None
