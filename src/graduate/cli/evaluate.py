"""graduate evaluate PROJECT: the trained students and the teacher on every frozen test set, the
figures with their confidence intervals, latency, cost, bias, and the gates (exit 1 on a failed gate)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from graduate.cli.console import console, err_console, fmt, fmt_usd, metric_rows, never_in_gold, stage_progress, teacher_caption

METRICS = [
    "accuracy", "precision", "recall", "f1", "macro_f1", "roc_auc", "pr_auc", "fpr", "tpr", "ece",
    "agreement_with_teacher", "kappa_with_teacher",
]


def _with_ci(figs: dict[str, Any], metric: str) -> str:
    text = fmt(figs.get(metric))
    ci = (figs.get("ci") or {}).get(metric)
    return f"{text} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else text


def _worst_term(w: dict[str, Any] | None) -> str:
    if not w:
        return "–"
    if not w["false_positives"]:
        return "0.000 (no term flagged)"
    return escape(f"{w['term']} {w['fpr']:.3f} ({w['false_positives']}/{w['negatives']})")


def print_assessment(a: dict[str, Any]) -> None:
    students = list(a.get("students") or {})
    best = a.get("best_student")
    for name, t in (a.get("test_sets") or {}).items():
        teacher = t.get("teacher") or {}
        title = f"{name} v{t.get('version')} ({t.get('purpose')}): {t['n']} items {t.get('label_counts')}, hash {t['content_hash'][:12]}"
        tab = Table(title=escape(title), title_justify="left")
        tab.add_column("metric")
        tab.add_column("teacher", justify="right")
        for s in students:
            tab.add_column(escape(s) + (" *" if s == best else ""), justify="right")
        task = a.get("task") or {}
        multi = task.get("kind") == "multi_label"
        rows = metric_rows(METRICS, list(task.get("labels") or []), task.get("positive"), multi_label=multi)
        if multi:
            rows.append(("agreement_with_teacher", "agreement_with_teacher"))
        for m, row in rows:
            vals = [teacher] + [(t.get("students") or {}).get(s) or {} for s in students]
            if all(v.get(m) is None for v in vals):
                continue
            tab.add_row(row, *[_with_ci(v, m) for v in vals])
        worst = [teacher.get("worst_identity")] + [((t.get("students") or {}).get(s) or {}).get("worst_identity") for s in students]
        if any(worst):  # the identity term whose non-positive items are flagged most
            tab.add_row("worst identity term FPR", *[_worst_term(w) for w in worst])
        tab.caption = teacher_caption(teacher, t["n"])
        console.print(tab)
        note = never_in_gold(name, t.get("label_counts") or {}) if multi else None
        if note:
            console.print(note, highlight=False)

    serving = a.get("serving") or {}
    tab = Table(title="cost and latency (single-item predictions, wall clock)", title_justify="left")
    for c in ["predictor", "cost / 1k items", "p50 ms", "p95 ms", "p99 ms", "batch ms/item"]:
        tab.add_column(c, justify="left" if c == "predictor" else "right")
    ts = serving.get("teacher") or {}
    tab.add_row("teacher", fmt_usd(ts.get("cost_per_1k"), bool(ts.get("cost_estimated"))), fmt(ts.get("latency_p50_ms"), 1), fmt(ts.get("latency_p95_ms"), 1), fmt(ts.get("latency_p99_ms"), 1), "–")
    for s in students:
        sv = (serving.get("students") or {}).get(s) or {}
        tab.add_row(escape(s), fmt_usd(sv.get("cost_per_1k")), fmt(sv.get("latency_p50_ms"), 3), fmt(sv.get("latency_p95_ms"), 3), fmt(sv.get("latency_p99_ms"), 3), fmt(sv.get("batch_ms_per_item"), 4))
    if not ts.get("latency_items"):
        tab.caption = "teacher latency: no live calls recorded (imported logs carry no timings)"
    console.print(tab)

    bias = a.get("bias")
    if bias:
        per_label = bool(bias.get("labels"))  # label sets: one row per label, each in turn the positive class
        title = f"identity-term bias: {bias['original']} vs {bias['perturbed']}" + (" (each label as the positive class)" if per_label else "")
        tab = Table(title=escape(title), title_justify="left")
        for c in ["student", "changed pairs", "mean |shift|", "max |shift|", "flipped", "FPR original", "FPR swapped", "largest FPR gap", "worst term", "FPR rise from the swap"]:
            tab.add_column(c, justify="left" if c in ("student", "worst term", "FPR rise from the swap") else "right")
        rows = []
        for s, b in (bias.get("students") or {}).items():
            if b:
                rows += [(f"{s} [{lab}]", m) for lab, m in (b.get("per_label") or {}).items()] if per_label else [(s, b)]
        for s, b in rows:
            tab.add_row(
                escape(s), str(b["changed_pairs"]), fmt(b.get("mean_abs_shift"), 4), fmt(b.get("max_abs_shift")), f"{b['flipped']} ({fmt(b.get('flip_rate'))})",
                fmt(b.get("fpr_original")), fmt(b.get("fpr_perturbed")), fmt(b.get("fpr_gap")),
                escape(f"{b['worst_term']} ({fmt(b.get('worst_term_fpr'))})" if b.get("worst_term") else "–"),
                escape(f"{fmt(b.get('fpr_change'))} ({b['fpr_change_term']})" if b.get("fpr_change_term") else "–"),
            )
        if bias.get("teacher_note"):
            tab.caption = escape(bias["teacher_note"])
        console.print(tab)


def print_gates(gates: list[dict[str, Any]]) -> None:
    if not gates:
        console.print("no gates declared in graduate.yaml (gates: [...]); nothing to pass or fail")
        return
    tab = Table(title="gates", title_justify="left")
    for c in ["gate", "test set", "student", "figures", "result"]:
        tab.add_column(c)
    for g in gates:
        tab.add_row(escape(g["gate"]), escape(g.get("test_set") or "–"), escape(g["student"]), escape(g["detail"]), "[green]PASS[/]" if g["passed"] else "[bold red]FAIL[/]")
    console.print(tab)
    passed = sum(1 for g in gates if g["passed"])
    colour = "green" if passed == len(gates) else "bold red"
    console.print(f"[{colour}]{passed} of {len(gates)} gate checks passed[/]")


def evaluate(
    project: Path = typer.Argument(..., help="Project directory (holds graduate.yaml)."),
    report: bool = typer.Option(True, "--report/--no-report", help="Also rewrite .graduate/report.html."),
) -> None:
    """Evaluate the trained students and the teacher on every test set; exit 1 when a gate fails."""
    from graduate.pipeline.project import Project

    proj = Project.load(project)
    with stage_progress() as progress:
        assessment = proj.evaluate(progress)
        path = proj.report() if report else None
    print_assessment(assessment)
    # which student `student` in the gates is, and why: a retrain on a grown pool can change it
    why = (assessment.get("model_selection") or {}).get("why")
    if assessment.get("best_student"):
        console.print(f"best student: [bold]{escape(str(assessment['best_student']))}[/]{escape(f' ({why})') if why else ''}", highlight=False)
    print_gates(assessment.get("gates") or [])
    console.print(f"figures: [bold]{escape(str(proj.workdir / 'evaluation.json'))}[/]" + (f"   report: [bold]{escape(str(path))}[/]" if path else ""), highlight=False)
    if not assessment.get("gates_passed", True):
        err_console.print("[bold red]a gate failed[/]: see the table above")
        raise typer.Exit(1)
