"""A multi-label answer is a set of the task's labels. Where one label per item is stored (the call
log's parsed answers, the labels table, predictions), the set is stored as one canonical string: its
labels in the spec's order joined by ``;``, and ``NONE`` for the empty set. ``encode``/``decode``
are the only code that knows the spelling."""

from __future__ import annotations

from typing import Iterable

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
