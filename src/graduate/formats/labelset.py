"""A multi-label answer is a set of the task's labels. Where one label per item is stored (the call
log's parsed answers, the labels table, predictions), the set is stored as one canonical string: its
labels in the spec's order joined by ``;``, and ``NONE`` for the empty set. ``encode``/``decode``
are the only code that knows the spelling.

``read_cell`` reads a label set a person wrote (a review file's ``corrected_label``, an earlier
labeller's ``label_imports`` cell, ``POST /v1/feedback``'s ``label``): every entry point calls it, so
one cell means the same set everywhere."""

from __future__ import annotations

import unicodedata
from typing import Iterable, Mapping, Sequence

from graduate.spec.text import is_blank

SEPARATOR = ";"
# The empty set: never a task label (a spec label may not contain ';' or be this).
NONE = "(none)"


def encode(labels: Iterable[str], order: list[str]) -> str:
    """The canonical string of a label set (unknown labels are a caller's bug: KeyError)."""
    rank = {lab: i for i, lab in enumerate(order)}
    chosen = sorted(set(labels), key=lambda lab: rank[lab])
    return SEPARATOR.join(chosen) if chosen else NONE


def decode(value: str | None, order: list[str]) -> frozenset[str] | None:
    """The label set of a canonical string (None stays None: no answer)."""
    if value is None:
        return None
    if value == NONE or value == "":
        return frozenset()
    parts = frozenset(p for p in value.split(SEPARATOR) if p)
    unknown = parts - set(order)
    if unknown:
        raise ValueError(f"labels {sorted(unknown)} are not task labels {order}")
    return parts


def as_list(value: str | None, order: list[str]) -> list[str] | None:
    """The set's labels in the spec's order (None stays None: no answer)."""
    got = decode(value, order)
    return None if got is None else [lab for lab in order if lab in got]


def indicator(value: str | None, order: list[str]) -> list[int] | None:
    """0/1 per task label, in the spec's order."""
    got = decode(value, order)
    return None if got is None else [int(lab in got) for lab in order]


def confidence(value: str | None, probs: "Iterable[float]", order: list[str]) -> float:
    """How sure the least sure per-label decision of a chosen set is: P(yes) for a label in the set,
    P(no) for one left out (the cascade's and the review queue's per-item confidence)."""
    chosen = decode(value, order) or frozenset()
    ps = [float(v) for v in probs]
    return min((v if lab in chosen else 1.0 - v) for lab, v in zip(order, ps)) if ps else 1.0


class CellError(ValueError):
    """Why a label-set cell gives no set, in one line without its place (the caller adds file and
    line, or the request field). ``code``: ``no_label`` (only separators), ``unknown_label``,
    ``none_with_labels`` (``(none)`` beside labels) or ``too_many_labels`` (past ``parse.max_labels``)."""

    def __init__(self, message: str, code: str, *, fix: str = ""):
        super().__init__(f"{message}; {fix}" if fix else message)
        self.code, self.problem = code, message  # problem: without the fix, for a caller that words its own


# A person's text shown in a message is cut past this many characters (a cell pasted full of text
# would otherwise put a megabyte on one line), saying how long it was; a teacher's answer word is too.
SHOWN_CHARS = 60


def shown(text: str) -> str:
    """``repr(text)``, or its first ``SHOWN_CHARS`` characters and its length when it is longer."""
    return repr(text) if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]!r}… ({len(text):,} characters)"


def _piece(text: str) -> str:
    """A piece as a person means it: one Unicode form (NFC), without the spaces and invisible format
    characters (zero-width space, BOM) at its edges that a spreadsheet or a form leaves there."""
    text = unicodedata.normalize("NFC", text)
    start, end = 0, len(text)
    while start < end and _at_edge(text[start]):
        start += 1
    while end > start and _at_edge(text[end - 1]):
        end -= 1
    return text[start:end]


def _at_edge(c: str) -> bool:
    return c.isspace() or unicodedata.category(c) == "Cf"


def _key(word: str) -> str:
    return _piece(word).casefold()


def read_cell(
    cell: str | Sequence[str],
    labels: Sequence[str],
    *,
    separator: str = SEPARATOR,
    none_word: str | None = None,
    values: Mapping[str, str] | None = None,
    max_labels: int | None = None,
) -> str | None:
    """The canonical string of the label set a person wrote, or None for an empty cell (no answer:
    not reviewed, not labelled). A string is split at ``separator``; a list's items are the pieces.
    Each piece is read stripped (spaces, zero-width characters), in either Unicode form and any
    case (``Care`` is ``care`` unless two labels differ only so); an empty piece is ignored
    (``care;`` is ``care``), a cell of only separators is a ``CellError``. ``(none)`` (or the task's
    ``parse.none`` word, unless a label has its name) alone is the empty set, as is the list ``[]``.
    ``values`` (a label import's map) turns each piece into a label first; with it a piece it does not
    map is no label. Raises ``CellError`` naming the piece at fault."""
    whole = shown(cell.strip()) if isinstance(cell, str) else repr(list(cell))
    if not isinstance(cell, str) and len(whole) > 4 * SHOWN_CHARS:
        whole = f"{whole[: 4 * SHOWN_CHARS]}… ({len(cell):,} items)"
    if isinstance(cell, str):
        if is_blank(cell):
            return None
        pieces = cell.split(separator)
    elif not cell:
        return NONE
    else:
        pieces = list(cell)
    pieces = [p for p in (_piece(p) for p in pieces) if p and not is_blank(p)]
    if not pieces:
        raise CellError(f"{whole} names no label; write {NONE} for the empty set", "no_label")
    by_key: dict[str, str | None] = {}
    for lab in labels:  # two labels of one key (possible with parse.words): only their exact names match
        by_key[_key(lab)] = None if _key(lab) in by_key else lab
    empty = {_key(NONE)} | ({_key(none_word)} if none_word and _key(none_word) not in by_key else set())
    # a piece is read in one Unicode form (and stripped): so are the keys, or a key and cell written
    # alike in the other form (as a Mac may save them) would no longer meet
    mapping = {_piece(k): v for k, v in values.items()} if values else None
    chosen: list[str] = []
    said_none: str | None = None  # the piece that named the empty set
    for p in pieces:
        mapped = (mapping.get(p) if mapping else p) or (p if _key(p) in empty else None)
        if mapped is not None and mapped not in labels and _key(mapped) in empty:  # a label's exact name is that label
            said_none = said_none or p
            continue
        lab = mapped if mapped in labels else by_key.get(_key(mapped)) if mapped is not None else None
        if lab is None:
            # the cell is named beside the piece unless it is that piece (in either Unicode form: both would look alike)
            alone = isinstance(cell, str) and unicodedata.normalize("NFC", cell.strip()) == p
            raise CellError(f"{'' if alone else whole + ': '}{shown(p)} is not a task label {list(labels)}", "unknown_label")
        chosen.append(lab)
    if said_none and chosen:
        raise CellError(f"{said_none!r} stands for the empty set, so it cannot go with labels ({whole}); give either the labels or {NONE} alone", "none_with_labels")
    value = encode(chosen, list(labels))
    if max_labels is not None and len(set(chosen)) > max_labels:
        raise CellError(
            f"{value!r} has {len(set(chosen))} labels, more than parse.max_labels {max_labels} allows",
            "too_many_labels",
            fix=f"keep at most {max_labels} or raise parse.max_labels",
        )
    return value
