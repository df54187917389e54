"""Who labels the training pool (``train.labeller``): the teacher's stored answer, a majority over
its repeated answers (self-consistency), or a vote across audited teacher configurations.

Every labeller gives, per example, a label (None when there is none), whether any answer was
stored at all, the winning vote share, and where the teacher gave them its label distribution
and rationale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from sqlalchemy import Engine

from graduate.data.examples import Example
from graduate.data.teacher_labels import owns_labels
from graduate.data.votes import config_answers
from graduate.errors import NotReadyError
from graduate.spec import ProjectSpec
from graduate.formats.voting import ensemble_vote

# Self-consistency votes over at most this many stored samples of one request.
MAX_SAMPLES = 64


@dataclass
class PoolLabel:
    label: str | None
    answered: bool  # some answer was stored (parseable or not)
    share: float = 1.0  # the winning label's vote share
    votes: int = 1
    tie: bool = False
    probs: dict[str, float] | None = None
    rationale: dict[str, Any] | None = None
    members: dict[str, str | None] = field(default_factory=dict)  # ensemble: each member's label
    error: str | None = None  # why the teacher's answer gave no label (the parser's words: "unknown label word 'x'")


@dataclass
class PoolLabels:
    labeller: str
    by_example: dict[int, PoolLabel]
    details: dict[str, Any]


def _soft(first: Any, vote: Any, spec: ProjectSpec) -> dict[str, float] | None:
    """The soft label of a voted item: the first answer's logprob distribution, else (label sets
    voted from several answers) each label's share of the votes. A label set written as a list
    (``label_list``, ``json_list``) takes the vote shares first when there are several votes: its
    logprob reading sees only the labels the answer started and errs low
    (``graduate.formats.label_starts``); ``json_booleans`` reads every label's own P(true)."""
    shares = dict(vote.per_label) if vote.per_label is not None and vote.votes > 1 else None
    if shares is not None and spec.task.parse.kind in ("label_list", "json_list"):
        return shares
    if first is not None and first.probs:
        return first.probs
    return shares


def label_pool(engine: Engine, spec: ProjectSpec, pool: Sequence[Example]) -> PoolLabels:
    cfg = spec.train.labeller
    if cfg.kind == "teacher":
        got = config_answers(engine, spec.task, spec.teacher, pool, n=1)
        out = {}
        for ex in pool:
            a = got.by_example[ex.id]
            first = a.first
            out[ex.id] = PoolLabel(
                a.vote.label, bool(a.used), 1.0, a.vote.votes, False, first.probs if first else None, first.rationale if first else None,
                error=first.error if first is not None and a.vote.label is None else None,
            )
        return PoolLabels(spec.teacher.labeller, out, {"kind": "teacher"})
    if cfg.kind == "self_consistency":
        got = config_answers(engine, spec.task, spec.teacher, pool, n=MAX_SAMPLES)
        out = {}
        repeated = 0
        for ex in pool:
            a = got.by_example[ex.id]
            repeated += int(len(a.used) > 1)
            first = a.first
            out[ex.id] = PoolLabel(
                a.vote.label, bool(a.used), a.vote.share, a.vote.votes, a.vote.tie, _soft(first, a.vote, spec), first.rationale if first else None
            )
        return PoolLabels(
            f"self-consistency:{spec.teacher.labeller}", out, {"kind": "self_consistency", "items_with_several_answers": repeated}
        )
    # ensemble
    from graduate.spec import audit_configs
    from graduate.store.audits import latest_audit

    names = cfg.members or [c.name for c in spec.audit.configs]
    configs = {c.name: c for c in audit_configs(spec)}
    accuracies: dict[str, float | None] = {}
    if cfg.method == "weighted":
        audited = latest_audit(engine)
        # pooled_score: accuracy (micro-F1 for label sets); audits stored before it named it pooled_accuracy
        pooled = {n: a.get("pooled_score", a.get("pooled_accuracy")) for n, a in audited.items()}
        missing = [n for n in names if pooled.get(n) is None]
        if missing:
            raise NotReadyError(f"train.labeller method weighted needs audited accuracies of {missing}; run `graduate teacher audit PROJECT` first")
        accuracies = {n: pooled[n] for n in names}
    answers = {n: config_answers(engine, spec.task, configs[n].teacher, pool, n=configs[n].n, record=owns_labels(spec.teacher, configs[n].teacher)) for n in names}
    out = {}
    coverage = {n: 0 for n in names}
    for ex in pool:
        member_labels = {n: answers[n].label(ex.id) for n in names}
        for n in names:
            coverage[n] += int(member_labels[n] is not None)
        vote = ensemble_vote(
            member_labels, method=cfg.method, accuracies=accuracies or None, tie_break="first", order=spec.task.labels if spec.task.multi_label else None,
            max_labels=spec.task.parse.max_labels,
        )
        first = next((answers[n].by_example[ex.id].first for n in names if answers[n].by_example[ex.id].used), None)
        out[ex.id] = PoolLabel(
            vote.label,
            any(answers[n].by_example[ex.id].used for n in names),
            vote.share,
            vote.votes,
            vote.tie,
            _soft(first, vote, spec),
            first.rationale if first else None,
            member_labels,
        )
    return PoolLabels(
        f"ensemble:{cfg.method}({','.join(names)})",
        out,
        {"kind": "ensemble", "method": cfg.method, "members": names, "weights_from_accuracy": accuracies or None, "member_coverage": coverage},
    )
