"""The HTML report: one self-contained page a team can decide from.

``write_report`` renders ``templates/report.html.j2`` (Jinja2, autoescaped) from an assessment
(``graduate.evaluate.assessment``), the run summary, the error analysis and, when they exist, the
teacher audit and the learning curve. Plots are matplotlib SVGs inlined as ``data:`` URIs and the
styles are inline: the page loads nothing else and runs no script.

Results of other commands are picked up when present in ``PROJECT/.graduate/``:

- ``audit.json`` (``graduate teacher audit``): ``{"configs": [{"name", "kind", "n", "mean_accuracy",
  "sets": {SET: {"accuracy", "fpr", ...}}, "flags": [{"message"}]}], "recommended": {"name",
  "ceiling": {SET: FLOAT}, "reason"}, "notes": [TEXT]}``; each configuration is a row, its scalar
  fields and per-set headline figures are columns.
- ``monitor.json`` (``graduate monitor``; format in ``graduate.monitor.report``): the checks, and
  plots of agreement and teacher share over time, text length and labels (training vs traffic).
- ``curve-KIND.json`` (``graduate curve``; also ``curve.json``): ``{"kind": KIND, "metric": NAME,
  "test_set": NAME, "points": [{"size", "mean", "std"}], "advice": TEXT or {"text": TEXT},
  "teacher_score": FLOAT}``; one plot per file.

Without them the sections say "not run yet" and name the command.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from graduate.errors import check_output_file, written_whole
from graduate.store.lineage import before_after, made_items
from graduate.store.runs import get_runs
from graduate.evaluate.before_after import slice_changes
from graduate.evaluate import plots
from graduate.evaluate.cost import format_usd_per_1k
from graduate.evaluate.criteria import METRICS
from graduate.evaluate.error_analysis import GROUP_TITLES, GROUPS, ErrorAnalysis
from graduate.evaluate.frozen import frozen_versions
from graduate.store.calls import redaction_counts
from graduate.spec import ProjectSpec

TEMPLATE = "report.html.j2"
TEST_METRICS = [
    "accuracy", "precision", "recall", "f1", "macro_precision", "macro_recall", "macro_f1",
    "roc_auc", "pr_auc", "fpr", "tpr", "ece", "brier", "agreement_with_teacher", "kappa_with_teacher",
]
MULTI_LABEL_METRICS = [
    "micro_f1", "micro_precision", "micro_recall", "macro_f1", "macro_precision", "macro_recall", "exact_match", "hamming_loss", "agreement_with_teacher",
]
SAMPLES_PER_GROUP = 5


def _defined(x: Any) -> Any:
    from jinja2 import Undefined

    return None if isinstance(x, Undefined) else x


def _num(x: Any, digits: int = 3) -> str:
    x = _defined(x)
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _pct(x: Any, digits: int = 1) -> str:
    x = _defined(x)
    return "–" if x is None else f"{100 * x:.{digits}f}%"


def _usd(x: Any, estimated: bool = False) -> str:
    return format_usd_per_1k(_defined(x), bool(_defined(estimated)))


def _ci(ci: Any, digits: int = 3) -> str:
    ci = _defined(ci)
    return "" if not ci else f"[{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def _bytes(n: Any) -> str:
    n = _defined(n)
    if n is None:
        return "–"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _optional_json(workdir: Path, *names: str) -> dict[str, Any] | None:
    for name in names:
        p = workdir / name
        if p.exists():
            try:
                data = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(data, dict):
                return data
    return None


AUDIT_FIELDS = ["name", "kind", "n", "mean_accuracy", "mean_micro_f1", "method"]  # known scalar fields, in this order; others are left out
AUDIT_SET_FIGURES = {"accuracy": "acc", "micro_f1": "micro-F1", "macro_f1": "macro-F1", "fpr": "FPR", "cost_per_1k_usd": "$/1k"}  # the rest: `graduate teacher audit`


def _audit_section(data: dict[str, Any] | None) -> dict[str, Any] | None:
    """Rows of the teacher audit: one per configuration, its scalar fields and, per audit set,
    the headline figures (``configs[].sets[SET][FIGURE]``); flags as plain text."""
    if not data:
        return None
    configs = [c for c in (data.get("configs") or data.get("configurations") or []) if isinstance(c, dict)]
    rows: list[dict[str, Any]] = []
    columns: list[str] = []
    flags: list[str] = []
    for c in configs:
        scalars = {k: v for k, v in c.items() if v is None or isinstance(v, (str, int, float, bool))}
        row: dict[str, Any] = {k: scalars[k] for k in AUDIT_FIELDS if k in scalars} or dict(list(scalars.items())[:6])
        for set_name, figs in (c.get("sets") or {}).items():
            for f, short in AUDIT_SET_FIGURES.items():
                # FPR is None on multi-class tasks: no column of dashes
                if isinstance(figs, dict) and figs.get(f) is not None:
                    row[f"{set_name} {short}"] = figs[f]
        flags += [f"{c.get('name', '?')}: {fl.get('message', '')}" for fl in c.get("flags") or [] if isinstance(fl, dict)]
        rows.append(row)
        columns += [k for k in row if k not in columns]
    rec = data.get("recommended")
    ceiling = data.get("ceiling")
    reason = None
    if isinstance(rec, dict):
        ceiling = rec.get("ceiling", ceiling)
        reason = rec.get("reason")
        rec = rec.get("name")
    if isinstance(ceiling, dict):
        ceiling = ", ".join(f"{k} {_num(v)}" for k, v in ceiling.items())
    elif ceiling is not None:
        ceiling = _num(ceiling)
    notes = data.get("notes") or []
    return {
        "columns": columns,
        "rows": rows,
        "recommended": rec,
        "reason": reason,
        "ceiling": ceiling,
        "flags": flags,
        "notes": [str(n) for n in notes] if isinstance(notes, list) else [str(notes)],
    }


def _curve_sections(workdir: Path) -> list[dict[str, Any]]:
    files = sorted(workdir.glob("curve-*.json"), key=lambda p: p.stat().st_mtime, reverse=True) + [workdir / "curve.json"]
    out = []
    for f in files:
        data = _optional_json(workdir, f.name)
        if not data:
            continue
        points = [p for p in data.get("points") or [] if isinstance(p, dict)]
        advice = data.get("advice")
        if isinstance(advice, dict):
            advice = advice.get("text")
        metric = str(data.get("metric") or "accuracy")
        teacher = next((data[k] for k in ("teacher_score", "teacher") if isinstance(data.get(k), (int, float))), None)
        title = " ".join(str(x) for x in (data.get("kind"), "on", data.get("test_set")) if x) if data.get("kind") else f.stem
        out.append(
            {"title": title, "metric": metric, "points": points, "advice": advice, "plot": plots.curve_plot(points, metric=metric, teacher=teacher)}
        )
    return out


def _monitor_section(workdir: Path) -> dict[str, Any] | None:
    """``monitor.json`` (``graduate monitor``, schema in ``graduate.monitor.report``): its checks and
    the plots of agreement over time, text length and labels, training set against traffic. A part
    of another shape (a file edited by hand, or of another version) is left out, not a crash."""
    data = _optional_json(workdir, "monitor.json")
    if not data:
        return None

    def part(d: Any, key: str) -> dict[str, Any]:
        value = d.get(key) if isinstance(d, dict) else None
        return value if isinstance(value, dict) else {}

    def number(x: Any) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

    def shares(value: Any) -> list[float] | None:
        return [float(x) for x in value] if isinstance(value, list) and all(number(x) for x in value) else None

    length = part(part(data, "drift"), "length")
    edges = [int(e) for e in shares(length.get("bin_edges")) or []]
    reference_share, current_share = shares(length.get("reference_share")) or [], shares(length.get("current_share")) or []
    length_cats = []
    if len(edges) >= 2:
        inner = [f"{a}–{b}" for a, b in zip(edges[1:-2], edges[2:-1])]
        length_cats = [f"< {edges[1]}", *inner, f"≥ {edges[-2]}"] if len(edges) > 2 else ["all"]
    labels = part(data, "labels")
    training, served = part(labels, "training"), part(labels, "traffic")
    names = sorted(set(training) | set(served))
    label_shares = [shares([d.get(n, 0.0) for n in names]) for d in (training, served)]
    buckets = part(data, "agreement").get("buckets")
    fields = ("items", "compared", "agreement", "teacher_share")
    buckets = [{**b, **{k: b.get(k) if number(b.get(k)) else None for k in fields}} for b in buckets if isinstance(b, dict)] if isinstance(buckets, list) else []
    checks = data.get("checks")
    plots_ = [
        ("Agreement with the teacher and share sent to it, over time", plots.monitor_time_plot(buckets)),
        (
            "Text length (characters): training set vs traffic",
            plots.shares_plot(length_cats, reference_share, current_share, xlabel="characters")
            if len(length_cats) == len(current_share) == len(reference_share) else None,
        ),
        (
            "Predicted labels in traffic vs training labels",
            plots.shares_plot([str(n) for n in names], label_shares[0], label_shares[1], xlabel="label") if label_shares[0] is not None and label_shares[1] is not None else None,
        ),
    ]
    return {
        "generated_at": data.get("generated_at"),
        "window": part(data, "window"),
        "ok": data.get("ok"),
        "traffic": part(data, "traffic"),
        "routing": {k: v for k, v in part(data, "routing").items() if k != "teacher_share" or number(v)},
        "checks": [c for c in checks if isinstance(c, dict)] if isinstance(checks, list) else [],
        "plots": [{"title": t, "uri": u} for t, u in plots_ if u],
    }


def _slice_changes(engine: Engine, spec: ProjectSpec, per_student: int = 15) -> list[dict[str, Any]]:
    """Each retrained student's largest changes by slice and identity term (graduate.evaluate.before_after)."""
    assessments = [(r.metrics or {}).get("assessment") for r in get_runs(engine, kind="evaluate", status="finished")]
    rows = slice_changes([a for a in assessments if a], min_size=max(spec.evaluation.min_slice_size, 20))
    shown: dict[str, int] = {}
    out = []
    for r in rows:
        if shown.get(r["student"], 0) < per_student:
            shown[r["student"]] = shown.get(r["student"], 0) + 1
            out.append(r)
    return out


def build_context(
    spec: ProjectSpec,
    root: Path,
    engine: Engine,
    assessment: dict[str, Any],
    summary: dict[str, Any] | None,
    errors: ErrorAnalysis | None,
) -> dict[str, Any]:
    """Everything the template shows, as plain values (plots as data URIs)."""
    labels = spec.task.labels
    students = list(assessment.get("students") or {})
    test_sets = assessment.get("test_sets") or {}
    quality = [n for n, t in test_sets.items() if t.get("purpose", "quality") == "quality"]
    serving = assessment.get("serving") or {}
    predictors = ["teacher"] + students

    # the ladder: every student side by side with the teacher
    ladder = []
    t_serv = serving.get("teacher") or {}
    ladder.append(
        {
            "name": f"teacher ({spec.teacher.model})",
            "teacher": True,
            "kind": "teacher",
            "per_set": {ts: test_sets[ts].get("teacher") or {} for ts in quality},
            "serving": t_serv,
            "info": {},
            "best": False,
        }
    )
    for name in students:
        ladder.append(
            {
                "name": name,
                "teacher": False,
                "kind": assessment["students"][name].get("kind"),
                "per_set": {ts: (test_sets[ts].get("students") or {}).get(name) or {} for ts in quality},
                "serving": (serving.get("students") or {}).get(name) or {},
                "info": assessment["students"][name],
                "best": name == assessment.get("best_student"),
            }
        )
    multi = spec.task.multi_label
    headline = "micro_f1" if multi else "accuracy"
    ladder_plot = plots.ladder_plot(
        {name: {ts: ((test_sets[ts]["students"].get(name) or {}).get(headline), ((test_sets[ts]["students"].get(name) or {}).get("ci") or {}).get(headline)) for ts in quality} for name in students},
        {ts: (test_sets[ts].get("teacher") or {}).get(headline) for ts in quality},
        metric=headline,
    )

    # the side-by-side table's figures per test set (label sets have no accuracy, F1 of one label or ROC-AUC)
    ladder_columns = (
        [("micro_f1", "micro-F1"), ("exact_match", "exact set match"), ("macro_f1", "macro-F1")] if multi else [("accuracy", "accuracy"), ("f1", "F1"), ("roc_auc", "ROC-AUC")]
    )

    binary = len(labels) == 2 and not multi
    positive = spec.task.positive
    # Binary: the positive label's precision/recall/F1 and its FPR/TPR. Multi-class: macro means
    # only (precision/recall/f1 would repeat them) and no FPR/TPR, which need one positive label.
    shown = MULTI_LABEL_METRICS if multi else TEST_METRICS if binary else [m for m in TEST_METRICS if m not in ("precision", "recall", "f1", "fpr", "tpr")]
    names = (
        {"precision": f"precision ({positive})", "recall": f"recall ({positive})", "f1": f"F1 ({positive})", "fpr": "FPR", "tpr": "TPR"}
        if binary
        else {"roc_auc": "roc_auc (macro, one-vs-rest)", "pr_auc": "pr_auc (macro, one-vs-rest)"}
    )
    sets = []
    for ts, t in test_sets.items():
        figs = {"teacher": t.get("teacher") or {}, **{s: (t.get("students") or {}).get(s) or {} for s in students}}
        metric_rows = []
        for m in shown:
            vals = [figs[p].get(m) for p in predictors]
            if all(v is None for v in vals):
                continue
            cis = [((figs[p].get("ci") or {}).get(m)) for p in predictors]
            metric_rows.append({"metric": names.get(m, m), "help": METRICS[m].description if m in METRICS else "", "values": vals, "cis": cis})
        per_label = [
            {"label": lab, "values": [((figs[p].get("per_label") or {}).get(lab) or {}) for p in predictors]} for lab in labels
        ]
        slice_names = [(r["kind"], r["name"], r["n"]) for r in (figs[students[0]].get("slices") if students else figs["teacher"].get("slices")) or []]
        slice_rows = []
        for kind, name, n in slice_names:
            cells = []
            for p in predictors:
                row = next((r for r in figs[p].get("slices") or [] if r["kind"] == kind and r["name"] == name), None)
                cells.append(row or {})
            slice_rows.append({"kind": kind, "name": name, "n": n, "cells": cells})
        teacher_figs = figs["teacher"]
        sets.append(
            {
                "name": ts,
                "n": t.get("n"),
                "version": t.get("version"),
                "purpose": t.get("purpose"),
                "hash": t.get("content_hash"),
                "label_counts": t.get("label_counts") or {},
                "teacher_answered": teacher_figs.get("answered"),
                "teacher_missing": teacher_figs.get("missing"),
                "teacher_unparseable": teacher_figs.get("unparseable"),
                "teacher_too_few": teacher_figs.get("too_few_answers"),
                "metrics": metric_rows,
                "per_label": per_label,
                "slices": slice_rows,
                "worst": {s: figs[s].get("worst_slices") or [] for s in students},
                "confusion_plot": plots.confusion_plot(
                    {("teacher" if p == "teacher" else p): figs[p].get("confusion") for p in predictors if figs[p].get("n") or figs[p].get("answered")},
                    labels,
                    title=f"{ts}: confusion matrices (rows gold, columns predicted)",
                ),
                "reliability_plot": plots.reliability_plot({p: figs[p].get("calibration") for p in predictors}, title=f"{ts}: reliability"),
            }
        )

    bias = assessment.get("bias")
    bias_ctx = None
    if bias:
        per_student = {s: b for s, b in (bias.get("students") or {}).items() if b}
        terms = bias.get("identity_terms") or []
        term_rows = []
        for i, term in enumerate(terms):
            cells = []
            for s in per_student:
                row = next((r for r in per_student[s].get("terms", []) if r["term"] == term), {})
                cells.append(row)
            term_rows.append({"term": term, "cells": cells})
        by_label = bool(bias.get("labels"))  # label sets: a row per label; the term table shows each student's headline label
        bias_ctx = {
            "original": bias.get("original"),
            "perturbed": bias.get("perturbed"),
            "students": per_student,
            "by_label": by_label,
            "rows": [(f"{s} [{lab}]", m) for s, b in per_student.items() for lab, m in (b.get("per_label") or {}).items()]
            if by_label
            else list(per_student.items()),
            "term_heads": [f"{s} [{b.get('label')}]" if by_label else s for s, b in per_student.items()],
            "teacher": bias.get("teacher"),
            "teacher_note": bias.get("teacher_note"),
            "term_rows": term_rows,
            "plot": plots.bias_plot(
                {s: b.get("terms") or [] for s, b in per_student.items()},
                {s: b.get("fpr_perturbed") for s, b in per_student.items()},
                min_size=spec.evaluation.min_slice_size,
            ),
        }

    cost_rows = [
        {
            "name": "teacher",
            "teacher": True,
            "cost_per_1k": t_serv.get("cost_per_1k"),
            "cost_estimated": t_serv.get("cost_estimated"),
            "cost_basis": t_serv.get("cost_basis"),
            "latency_p50_ms": t_serv.get("latency_p50_ms"),
            "latency_p95_ms": t_serv.get("latency_p95_ms"),
            "latency_p99_ms": t_serv.get("latency_p99_ms"),
            "latency_items": t_serv.get("latency_items"),
            "batch_ms_per_item": None,
        }
    ]
    for s in students:
        sv = (serving.get("students") or {}).get(s) or {}
        cost_rows.append({"name": s, "teacher": False, **sv})

    err_ctx = None
    if errors is not None:
        err_ctx = {
            "student": errors.student,
            "counts": errors.counts,
            "groups": [
                {"name": g, "title": GROUP_TITLES[g], "total": sum(c.get(g, 0) for c in errors.counts.values()), "samples": errors.group(g)[:SAMPLES_PER_GROUP]}
                for g in GROUPS
            ],
            "limitations": errors.limitations,
            "gap_slices": errors.gap_slices,
            "labels": labels,
            # multi-label: per test set, (label, errors) with the labels most behind the teacher first
            "per_label": {ts: sorted(per.items(), key=lambda kv: -kv[1]["gap"]) for ts, per in errors.per_label.items()},
        }

    workdir = root / ".graduate"
    dataset = assessment.get("dataset") or (summary or {}).get("dataset")
    return {
        "title": f"graduate report: {spec.task.name}",
        "binary": binary,
        "identity": bool(spec.evaluation.identity_terms) or bias_ctx is not None,
        "a": assessment,
        "spec": spec,
        "labels": labels,
        "students": students,
        "predictors": predictors,
        "quality": quality,
        "gates": assessment.get("gates") or [],
        "gates_passed": assessment.get("gates_passed"),
        "ladder": ladder,
        "ladder_columns": ladder_columns,
        "ladder_plot": ladder_plot,
        "headline": headline,
        "sets": sets,
        "bias": bias_ctx,
        "cost_rows": cost_rows,
        "cost_plot": plots.cost_latency_plot(cost_rows),
        "errors": err_ctx,
        "dataset": dataset,
        "summary": summary,
        "frozen": frozen_versions(engine),
        "privacy": {"redact": spec.privacy.redact, "counts": redaction_counts(engine)},
        "data_loop": {"made": made_items(engine), "before_after": before_after(engine), "slices": _slice_changes(engine, spec)},
        "audit": _audit_section(_optional_json(workdir, "audit.json", "teacher_audit.json")),
        "curves": _curve_sections(workdir),
        "monitor": _monitor_section(workdir),
        "root": str(root),
    }


def render_report(context: dict[str, Any]) -> str:
    from jinja2 import ChainableUndefined, Environment, PackageLoader, select_autoescape

    # ChainableUndefined: a figure missing for one predictor renders as "–", not an error
    env = Environment(
        loader=PackageLoader("graduate", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=_num, pct=_pct, usd=_usd, ci=_ci, bytes=_bytes)
    return env.get_template(TEMPLATE).render(**context)


def write_report(
    path: Path,
    *,
    spec: ProjectSpec,
    root: Path,
    engine: Engine,
    assessment: dict[str, Any],
    summary: dict[str, Any] | None = None,
    errors: ErrorAnalysis | None = None,
) -> Path:
    check_output_file(path)
    html = render_report(build_context(spec, root, engine, assessment, summary, errors))
    with written_whole(path) as f:  # a temporary file of its own: a report and a run at once each write a whole one
        f.write(html)
    return path
