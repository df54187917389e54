"""Teacher audit: compare teacher configurations (model x prompt x temperature x few-shot x n
samples) and votes across them on gold-labelled sets, from the call log (and, live, by asking
the teacher for what the log lacks).

Per configuration and audit set: accuracy, precision, recall, F1, FPR/TPR on the items it
answered, coverage, parse-failure rate, failed calls, cost per 1,000 items, latency p50/p95 (live
calls only: imported logs carry none), and how often repeated identical requests disagreed. The
audit recommends the single configuration `graduate label` should use (highest mean accuracy
among those that answer at least ``audit.min_coverage`` of every set) and reports its agreement
with gold (stored as ``ceiling`` for compatibility: a reference, which students that average out
the teacher's random mistakes can exceed); it flags configurations whose
false-positive rate is ``audit.fpr_flag`` times the recommended one's.

Multi-label tasks are audited per label: each set's figures are micro/macro P/R/F1, exact-set match,
Hamming loss and per-label P/R/F1 with support (``graduate.evaluate.multi_label``); configurations
are ranked by micro-F1 (``metric`` in the audit; ``mean_<metric>`` per configuration), and a label
whose F1 is far below the recommended configuration's is flagged (``weak_label``).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from sqlalchemy import Engine

from graduate.data.teacher_labels import owns_labels
from graduate.data.votes import ConfigAnswers, config_answers
from graduate.errors import NotReadyError
from graduate.evaluate.evaluation import selection_metric
from graduate.evaluate.evaluation import set_metrics as label_set_metrics
from graduate.evaluate.metrics import classification_metrics
from graduate.evaluate.testsets import TestSet, load_test_set
from graduate.pipeline.progress import ProgressFn, no_progress
from graduate.spec import AuditConfig, EnsembleSpec, EvaluationSpec, ProjectSpec, TeacherSpec, audit_configs
from graduate.store.audits import latest_audit
from graduate.formats.voting import disagreement, ensemble_vote

# Parse failures above this share of a configuration's answers are flagged.
PARSE_FLAG = 0.02
# Multi-label: a label (with at least WEAK_MIN_SUPPORT gold items) whose F1 is below this share of the
# recommended configuration's F1 on that label is flagged.
WEAK_LABEL_SHARE = 0.75
WEAK_MIN_SUPPORT = 10


def _quality(spec: ProjectSpec, gold: Sequence[str], pred: Sequence[str]) -> dict[str, Any]:
    """Figures of hard labels against gold: classification metrics, or per-label ones for label sets."""
    task = spec.task
    if task.multi_label:
        m = label_set_metrics(task, gold, pred, evaluation=spec.evaluation, seed=spec.seed)
        m.pop("n", None)
        return m
    m = classification_metrics(list(gold), list(pred), labels=task.labels, positive=task.positive)
    m.pop("roc_auc", None)  # hard labels only: an AUC would just restate TPR/FPR
    m.pop("n", None)
    return m


def audit_sets(engine: Engine, spec: ProjectSpec) -> list[TestSet]:
    """The gold-labelled audit sets: ``audit.sets``, or the spec's quality test sets."""
    selections = list(spec.audit.sets) or [t for t in spec.test_sets if t.purpose == "quality"]
    if not selections:
        raise NotReadyError("nothing to audit on: add audit.sets (gold-labelled selections) or test_sets to graduate.yaml")
    out = []
    for sel in selections:
        try:
            out.append(load_test_set(engine, sel))
        except NotReadyError:
            raise NotReadyError(
                f"audit set {sel.name!r} (source {sel.source or 'any'}, tags {sel.tags}) has no gold labels; an audit needs gold: "
                "give its data source a gold_column in graduate.yaml, or audit on another set"
            ) from None
    return out


def _percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(values), q)) if values else None


def set_metrics(spec: ProjectSpec, test: TestSet, answers: ConfigAnswers) -> dict[str, Any]:
    """One configuration's figures on one audit set."""
    task = spec.task
    per = [answers.by_example[ex.id] for ex in test.examples]
    pairs = [(g, a.vote.label) for g, a in zip(test.gold, per) if a.vote.label is not None]
    m: dict[str, Any] = _quality(spec, [g for g, _ in pairs], [p for _, p in pairs])  # type: ignore[misc]
    used = [c for a in per for c in a.used]
    priced = [a for a in per if a.used and all(c.cost_usd is not None for c in a.used)]
    latencies = [float(c.latency_ms) for c in used if c.latency_ms is not None]
    repeated, disagreeing = disagreement([a.all_labels for a in per])
    unparseable = sum(a.unparseable for a in per)
    m.update(
        items=len(test.examples),
        answered=len(pairs),
        coverage=len(pairs) / len(test.examples) if test.examples else None,
        missing=sum(1 for a in per if not a.used),
        ties=sum(1 for a in per if a.vote.tie and a.vote.label is None),
        calls=len(used),
        failed_calls=sum(a.failed_calls for a in per),
        parse_failures=unparseable,
        parse_failure_rate=unparseable / len(used) if used else None,
        cost_per_1k_usd=1000 * sum(sum(c.cost_usd for c in a.used) for a in priced) / len(priced) if priced else None,  # type: ignore[misc]
        cost_estimated=any(c.tokens_estimated for a in priced for c in a.used),
        latency_p50_ms=_percentile(latencies, 50),
        latency_p95_ms=_percentile(latencies, 95),
        repeated_items=repeated,
        disagreeing_items=disagreeing,
        disagreement_rate=disagreeing / repeated if repeated else None,
    )
    if answers.n > 1:
        shares = [a.vote.share for a in per if a.vote.label is not None]
        m["mean_vote_share"] = float(np.mean(shares)) if shares else None
        m["samples_per_item"] = float(np.mean([len(a.used) for a in per])) if per else None
    return m


def ensemble_metrics(
    spec: ProjectSpec, test: TestSet, ens: EnsembleSpec, members: dict[str, ConfigAnswers], accuracies: dict[str, float | None], member_sets: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    task = spec.task
    votes = [
        ensemble_vote(
            {m: members[m].label(ex.id) for m in ens.members}, method=ens.method, accuracies=accuracies, order=task.labels if task.multi_label else None,
            max_labels=task.parse.max_labels,
        )
        for ex in test.examples
    ]
    pairs = [(g, v.label) for g, v in zip(test.gold, votes) if v.label is not None]
    m: dict[str, Any] = _quality(spec, [g for g, _ in pairs], [p for _, p in pairs])  # type: ignore[misc]
    costs = [member_sets[x].get("cost_per_1k_usd") for x in ens.members]
    shares = [v.share for v in votes if v.label is not None]
    m.update(
        items=len(test.examples),
        answered=len(pairs),
        coverage=len(pairs) / len(test.examples) if test.examples else None,
        ties=sum(1 for v in votes if v.tie and v.label is None),
        missing=sum(1 for v in votes if v.votes == 0),
        cost_per_1k_usd=sum(c for c in costs if c is not None) if any(c is not None for c in costs) else None,
        cost_estimated=any(member_sets[x].get("cost_estimated") for x in ens.members),
        mean_vote_share=float(np.mean(shares)) if shares else None,
    )
    return m


def _pooled_score(spec: ProjectSpec, tests: Sequence[TestSet], answers: ConfigAnswers) -> float | None:
    """The audit metric over every audit set's answered items together (ensemble weights)."""
    gold, pred = [], []
    for test in tests:
        for ex, g in zip(test.examples, test.gold):
            lab = answers.label(ex.id)
            if lab is not None:
                gold.append(g)
                pred.append(lab)
    if not gold:
        return None
    if spec.task.multi_label:
        return label_set_metrics(spec.task, gold, pred, evaluation=EvaluationSpec(bootstrap_resamples=0))["micro_f1"]
    return sum(g == p for g, p in zip(gold, pred)) / len(gold)


def fill_live(
    engine: Engine,
    spec: ProjectSpec,
    configs: Sequence[AuditConfig],
    tests: Sequence[TestSet],
    *,
    backend_factory: Callable[[TeacherSpec], Any] | None = None,
    progress: ProgressFn = no_progress,
) -> dict[str, Any]:
    """Ask each configuration's teacher for the answers the call log lacks (n per item), through
    the labelling client (cache, limits, budget). Returns per configuration its LabelStats."""
    from graduate.teacher.labeling import label_texts
    from graduate.teacher.registry import make_teacher

    from graduate.privacy import redactor_for

    texts = list(dict.fromkeys(ex.text for t in tests for ex in t.examples))
    redactor = redactor_for(spec.privacy)
    stats: dict[str, Any] = {}
    for i, cfg in enumerate(configs):
        progress(f"live answers: {cfg.name}", i, len(configs))
        backend = (backend_factory or make_teacher)(cfg.teacher)
        _, st = asyncio.run(
            label_texts(engine, cfg.teacher, backend, texts, price=spec.price_for(cfg.teacher.model), samples=cfg.n, redactor=redactor)
        )
        stats[cfg.name] = st
    progress("live answers", len(configs), len(configs))
    return stats


def run_audit(
    engine: Engine,
    spec: ProjectSpec,
    *,
    live: bool = False,
    backend_factory: Callable[[TeacherSpec], Any] | None = None,
    progress: ProgressFn = no_progress,
) -> dict[str, Any]:
    """Audit every configuration and ensemble of ``spec.audit`` on the audit sets; returns the
    audit (see ``graduate.cli.teacher`` for how it is shown, ``audit.json`` for the stored form)."""
    tests = audit_sets(engine, spec)
    configs = audit_configs(spec)
    warnings = moved_names(engine, configs)
    live_stats: dict[str, Any] = {}
    if live:
        live_stats = fill_live(engine, spec, configs, tests, backend_factory=backend_factory, progress=progress)
    examples = list({ex.id: ex for t in tests for ex in t.examples}.values())
    answers: dict[str, ConfigAnswers] = {}
    results: list[dict[str, Any]] = []
    for i, cfg in enumerate(configs):
        progress("audit configurations", i, len(configs))
        answers[cfg.name] = config_answers(engine, spec.task, cfg.teacher, examples, n=cfg.n, record=owns_labels(spec.teacher, cfg.teacher))
        t = cfg.teacher
        results.append(
            {
                "name": cfg.name,
                "kind": "config",
                "labeller": t.labeller,
                "model": t.model,
                "prompt_name": t.prompt_name,
                "temperature": t.temperature,
                "few_shot": len(t.few_shot),
                "n": cfg.n,
                "spec": cfg.spec,
                "sets": {test.name: set_metrics(spec, test, answers[cfg.name]) for test in tests},
                "pooled_score": _pooled_score(spec, tests, answers[cfg.name]),
            }
        )
        if cfg.name in live_stats:
            st = live_stats[cfg.name]
            results[-1]["live"] = {
                "sent": st.sent, "cached": st.cached, "failed": st.failed, "retryable": st.retryable, "not_sent": st.not_sent, "held": st.held, "cost_usd": st.cost_usd,
                "budget_stopped": st.budget_stopped, "errors": st.errors[:5],
                "stopped_unsent": st.stopped_unsent, "known_cut": st.known_cut, "known_cut_advice": st.known_cut_advice,
            }
    progress("audit configurations", len(configs), len(configs))
    accuracies = {r["name"]: r["pooled_score"] for r in results}
    by_name = {r["name"]: r for r in results}
    for ens in spec.audit.ensembles:
        results.append(
            {
                "name": ens.name,
                "kind": "ensemble",
                "labeller": None,
                "members": list(ens.members),
                "method": ens.method,
                "n": None,
                "spec": ens.model_dump(),
                "sets": {
                    test.name: ensemble_metrics(spec, test, ens, answers, accuracies, {m: by_name[m]["sets"][test.name] for m in ens.members})
                    for test in tests
                },
            }
        )
    metric = selection_metric(spec.task)
    for r in results:
        scores = [s[metric] for s in r["sets"].values() if s.get(metric) is not None]
        r["mean_score"] = float(np.mean(scores)) if len(scores) == len(tests) else None
        r[f"mean_{metric}"] = r["mean_score"]
        r["eligible"] = all((s.get("coverage") or 0) >= spec.audit.min_coverage for s in r["sets"].values())
    recommended = recommend(spec, results, tests)
    flag(spec, results, recommended, tests)
    audit = {
        "audit_id": uuid.uuid4().hex,
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "live": live,
        "task": spec.task.name,
        "positive_label": spec.task.positive,
        "labels": list(spec.task.labels),
        "multi_label": spec.task.multi_label,
        "metric": metric,
        "sets": [{"name": t.name, "items": len(t.examples), "label_counts": _gold_counts(spec, t), "without_gold": t.without_gold} for t in tests],
        "configs": results,
        "recommended": recommended,
        "weights": {name: acc for name, acc in accuracies.items()},
        "notes": notes(results),
        "warnings": warnings,
        "chosen_on": "audit.sets" if spec.audit.sets else "quality test sets",
    }
    if not spec.audit.sets:
        audit["notes"].append(
            "the recommendation and the vote weights are chosen on the quality test sets: a student trained on labels chosen there "
            "scores optimistically on them; give audit.sets gold-labelled items outside the test sets (e.g. a share of the pool) to choose on those"
        )
    return audit


def _gold_counts(spec: ProjectSpec, test: TestSet) -> dict[str, int]:
    if spec.task.multi_label:
        from graduate.data.balance import per_label_counts

        return per_label_counts(test.gold, spec.task.labels)
    return {lab: test.gold.count(lab) for lab in spec.task.labels}


def recommend(spec: ProjectSpec, results: list[dict[str, Any]], tests: Sequence[TestSet]) -> dict[str, Any] | None:
    """The single configuration with the best mean audit metric (accuracy; micro-F1 for label sets)
    among those with enough coverage (ties: the cheaper); the best ensemble is reported beside it
    when it does better."""
    metric = selection_metric(spec.task)
    name = "micro-F1" if metric == "micro_f1" else "accuracy"
    eligible = [r for r in results if r["kind"] == "config" and r["eligible"] and r["mean_score"] is not None]
    if not eligible:
        return None

    def cost(r: dict[str, Any]) -> float:
        cs = [s.get("cost_per_1k_usd") for s in r["sets"].values()]
        return float(np.mean([c for c in cs if c is not None])) if any(c is not None for c in cs) else float("inf")

    best = max(eligible, key=lambda r: (round(r["mean_score"], 6), -cost(r)))
    current = spec.teacher.labeller
    out: dict[str, Any] = {
        "name": best["name"],
        "labeller": best["labeller"],
        "model": best["model"],
        "prompt_name": best["prompt_name"],
        "n": best["n"],
        "metric": metric,
        "mean_score": best["mean_score"],
        f"mean_{metric}": best["mean_score"],
        "ceiling": {set_name: s.get(metric) for set_name, s in best["sets"].items()},
        "current_teacher": current,
        "current_is_recommended": best["labeller"] == current and best["n"] == 1,
        "reason": (
            f"highest mean {name} ({best['mean_score']:.3f}) over {', '.join(t.name for t in tests)} among the configurations "
            f"that answered at least {spec.audit.min_coverage:.0%} of every set"
        ),
    }
    ensembles = [r for r in results if r["kind"] == "ensemble" and r["eligible"] and r["mean_score"] is not None]
    if ensembles:
        top = max(ensembles, key=lambda r: r["mean_score"])
        if top["mean_score"] > best["mean_score"]:
            out["better_ensemble"] = {"name": top["name"], "mean_score": top["mean_score"], f"mean_{metric}": top["mean_score"], "members": top["members"], "method": top["method"]}
    return out


def _coverage_message(s: dict[str, Any], name: str, *, live: bool = False) -> str:
    """Why a configuration answers too little of a set, and what helps: --live asks for missing
    answers (unless this was the --live run); it cannot break a tie between voters."""
    why = [f"{s.get('missing', 0)} items without a stored answer"]
    if s.get("parse_failures"):
        why.append(f"{s['parse_failures']} unparseable")
    if s.get("ties"):
        why.append(f"{s['ties']} tied votes")
    hints = []
    if live and s.get("missing"):
        hints.append("the --live run did not answer them (budget, failed calls: see its figures)")
    elif s.get("missing") or not s.get("ties"):
        hints.append("run with --live to ask the teacher")
    if s.get("ties"):
        hints.append("an odd number of voters (n, or an ensemble's members) avoids ties")
    return f"answers only {s['coverage']:.0%} of {name} ({', '.join(why)}); {'; '.join(hints)}"


def flag(spec: ProjectSpec, results: list[dict[str, Any]], recommended: dict[str, Any] | None, tests: Sequence[TestSet]) -> None:
    """Add plain-words warnings to each configuration: high false-positive rate, low coverage, parse failures."""
    best = next((r for r in results if recommended and r["name"] == recommended["name"]), None)
    pos = spec.task.positive
    binary = len(spec.task.labels) == 2
    for r in results:
        flags: list[dict[str, Any]] = []
        for name, s in r["sets"].items():
            ref = best["sets"][name] if best is not None and r is not best else None
            if binary and ref is not None and s.get("fpr") is not None and ref.get("fpr") is not None and s["answered"]:
                if s["fpr"] > spec.audit.fpr_flag * ref["fpr"] and s["fpr"] > ref["fpr"]:
                    flags.append(
                        {
                            "flag": "high_fpr",
                            "set": name,
                            "message": f"high false-positive rate on {name}: marks {s['fpr']:.1%} of gold non-'{pos}' items '{pos}' "
                            f"({s['fpr'] / ref['fpr']:.1f}x the {ref['fpr']:.1%} of {best['name']})",  # type: ignore[index]
                        }
                    )
            if s.get("coverage") is not None and s["coverage"] < spec.audit.min_coverage:
                flags.append(
                    {
                        "flag": "low_coverage",
                        "set": name,
                        "message": _coverage_message(s, name, live="live" in r),
                    }
                )
            if spec.task.multi_label and ref is not None:
                for lab, own in (s.get("per_label") or {}).items():
                    theirs = (ref.get("per_label") or {}).get(lab) or {}
                    if own.get("support", 0) >= WEAK_MIN_SUPPORT and theirs.get("f1") and (own.get("f1") or 0) < WEAK_LABEL_SHARE * theirs["f1"]:
                        flags.append(
                            {
                                "flag": "weak_label",
                                "set": name,
                                "label": lab,
                                "message": f"weak on label {lab!r} in {name}: F1 {own.get('f1') or 0:.3f} vs {theirs['f1']:.3f} for {best['name']}",  # type: ignore[index]
                            }
                        )
            if (s.get("parse_failure_rate") or 0) > PARSE_FLAG:
                flags.append({"flag": "parse_failures", "set": name, "message": f"{s['parse_failure_rate']:.1%} of its answers on {name} parse to no label"})
        r["flags"] = flags


def save_audit_files(engine: Engine, workdir: Path, audit: dict[str, Any]) -> Path:
    """Store the audit (teacher_audits table) and write it to ``workdir/audit.json`` (the report reads it)."""
    from graduate.store.audits import save_audit

    save_audit(engine, audit)
    path = workdir / "audit.json"
    path.write_text(json.dumps(audit, indent=2, default=str))
    return path


def moved_names(engine: Engine, configs: Sequence[AuditConfig]) -> list[str]:
    """One line per configuration whose labeller name moved since the last stored audit while its
    own settings did not. Its name carries the sampling parameters it sends unlike the main
    teacher's (``TeacherSpec.variant_of``), so a change of teacher.temperature (or max_tokens,
    logprobs, response_format) renames a configuration that set its own. Nothing is lost (answers
    are matched by request), but its labels stored under the old name stay under it. Not made
    stable instead: the main teacher's name has no suffix whatever its parameters, and a
    configuration at them must share it (review and label_quality rely on that)."""
    from graduate.store.audits import latest_audit

    last = latest_audit(engine)
    out = []
    for cfg in configs:
        old = (last.get(cfg.name) or {}).get("labeller")
        new = cfg.teacher.labeller
        if not old or old == new or old.split("~")[0] != new.split("~")[0]:
            continue  # new, unchanged, or another model or prompt: a name that moved with what it asks
        if last[cfg.name]["spec"] != json.loads(json.dumps(cfg.spec, default=str)):
            continue  # its own settings changed: the new name is what was asked for
        out.append(
            f"audit config {cfg.name!r} is now {new}, not {old} as in the last audit: a config's name adds the sampling parameters "
            "it sends unlike teacher:, whose parameters changed; the labels stored under the old name stay under it "
            "(answers are matched by request, so none is asked again)"
        )
    return out


def notes(results: list[dict[str, Any]]) -> list[str]:
    out = []
    if any(r["kind"] == "ensemble" and r.get("method") == "weighted" for r in results):
        out.append(
            "weighted ensembles weigh each member by its accuracy on these same audit sets, so their figures here are optimistic"
        )
    if any(s.get("cost_estimated") for r in results for s in r["sets"].values()):
        out.append("costs are estimated offline (~4 ASCII characters per token, a token per other character): the recorded logs carry no token usage")
    if all(s.get("latency_p50_ms") is None for r in results if r["kind"] == "config" for s in r["sets"].values()):
        out.append("no latency figures: imported logs record none (live calls do)")
    return out
