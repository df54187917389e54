"""Votes over labels: self-consistency (one teacher's repeated answers) and ensembles (several
teacher configurations), as pure functions.

A vote's ``share`` is the winning label's part of the (weighted) votes cast: with self-consistency
it is the confidence of the majority label (4 of 5 samples agree: 0.8). Unparseable answers
(``None``) are not votes. A tie has no winner unless ``tie_break="first"`` picks, among the tied
labels, the one that was answered first (the answer a single call would have given).

Multi-label answers (label sets as canonical strings, ``order`` given) are voted per label: a label
is in the result when more than half of the (weighted) votes include it; at exactly half the first
answer decides (``tie_break="first"``), else the vote has no winner. With ``max_labels`` (the most
an answer may give), a set past it keeps the labels with the most votes (ties: the first answer's,
then the task's order): three answers of two labels each can hold three labels by majority. The
share is the least agreed per-label decision's share; ``per_label`` keeps each label's share of the
votes (the soft label a multi-label training set takes from several answers).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal, Mapping, Sequence


@dataclass(frozen=True)
class Vote:
    label: str | None  # None: no votes, or a tie without a tie-break
    share: float  # the winner's share of the votes cast (the tied share for a tie); 0 without votes
    votes: int  # how many parseable answers voted
    counts: dict[str, float] = field(default_factory=dict)  # (weighted) votes per label
    tie: bool = False
    per_label: dict[str, float] | None = None  # label sets: each label's (weighted) share of the votes


def majority_vote(
    labels: Sequence[str | None],
    weights: Sequence[float] | None = None,
    *,
    tie_break: Literal["none", "first"] = "none",
    order: list[str] | None = None,
    max_labels: int | None = None,
) -> Vote:
    """The label with the most (weighted) votes. ``labels`` are in answer order; with ``order``
    (the task's labels) they are label sets, voted per label, at most ``max_labels`` kept."""
    if weights is not None and len(weights) != len(labels):
        raise ValueError(f"{len(labels)} labels but {len(weights)} weights")
    if order is not None:
        return _set_vote(labels, weights, tie_break=tie_break, order=order, max_labels=max_labels)
    counts: dict[str, float] = {}
    order: list[str] = []
    cast = 0
    for i, lab in enumerate(labels):
        if lab is None:
            continue
        w = 1.0 if weights is None else float(weights[i])
        if lab not in counts:
            counts[lab] = 0.0
            order.append(lab)
        counts[lab] += w
        cast += 1
    total = sum(counts.values())
    if not counts or total <= 0:
        return Vote(None, 0.0, cast, counts)
    top = max(counts.values())
    winners = [lab for lab in order if math.isclose(counts[lab], top)]
    share = top / total
    if len(winners) == 1:
        return Vote(winners[0], share, cast, counts)
    return Vote(winners[0] if tie_break == "first" else None, share, cast, counts, tie=True)


def _set_vote(labels: Sequence[str | None], weights: Sequence[float] | None, *, tie_break: str, order: list[str], max_labels: int | None = None) -> Vote:
    from graduate.formats import labelset

    cast = [(labelset.decode(lab, order), 1.0 if weights is None else float(weights[i])) for i, lab in enumerate(labels) if lab is not None]
    total = sum(w for _, w in cast)
    if not cast or total <= 0:
        return Vote(None, 0.0, len(cast), {})
    counts = {lab: sum(w for s, w in cast if lab in s) for lab in order}  # type: ignore[operator]
    first = cast[0][0] or frozenset()
    chosen, tie = [], False
    for lab in order:
        share = counts[lab] / total
        if math.isclose(share, 0.5):
            tie = True
            if lab in first:
                chosen.append(lab)
        elif share > 0.5:
            chosen.append(lab)
    if max_labels is not None and len(chosen) > max_labels:
        chosen = sorted(chosen, key=lambda lab: (-counts[lab], lab not in first))[:max_labels]  # stable: the task's order among equals
    # each decision's agreement: its share in, or the rest out (exactly half either way)
    shares = [0.5 if math.isclose(counts[lab] / total, 0.5) else counts[lab] / total if lab in chosen else 1.0 - counts[lab] / total for lab in order]
    winner = labelset.encode(chosen, order) if not tie or tie_break == "first" else None
    return Vote(winner, min(shares), len(cast), counts, tie=tie, per_label={lab: counts[lab] / total for lab in order})


def audit_weight(accuracy: float | None) -> float:
    """A member's vote weight from its audited accuracy: the log-odds log(acc / (1 - acc)), the
    optimal weight for independent binary voters (Nitzan & Paroush 1982). At or below chance: 0."""
    if accuracy is None or accuracy <= 0.5:
        return 0.0
    acc = min(accuracy, 0.999)
    return math.log(acc / (1.0 - acc))


def ensemble_vote(
    member_labels: Mapping[str, str | None],
    *,
    method: Literal["majority", "weighted"] = "majority",
    accuracies: Mapping[str, float | None] | None = None,
    tie_break: Literal["none", "first"] = "none",
    order: list[str] | None = None,
    max_labels: int | None = None,
) -> Vote:
    """One item's vote across teacher configurations (``member_labels``: config name -> its label,
    in the members' order). ``weighted`` needs ``accuracies`` (config name -> audited accuracy);
    ``order`` and ``max_labels``: multi-label (see the module docstring)."""
    names = list(member_labels)
    if method == "weighted":
        if accuracies is None:
            raise ValueError("a weighted vote needs the members' audited accuracies")
        return majority_vote(
            [member_labels[n] for n in names], [audit_weight(accuracies.get(n)) for n in names], tie_break=tie_break, order=order, max_labels=max_labels
        )
    return majority_vote([member_labels[n] for n in names], tie_break=tie_break, order=order, max_labels=max_labels)


def disagreement(samples: Sequence[Sequence[str | None]]) -> tuple[int, int]:
    """Over items with at least two parseable answers to the same request: (how many such items,
    how many of them got more than one distinct answer)."""
    repeated = [[s for s in item if s is not None] for item in samples]
    repeated = [r for r in repeated if len(r) >= 2]
    return len(repeated), sum(1 for r in repeated if len(Counter(r)) > 1)
