"""graduate errors PROJECT: who was right on each test item, the worst slices, the limitations in
plain words, and a review-queue CSV per group (format: graduate.evaluate.error_analysis)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from graduate.cli.console import console, fmt, shown


def errors(
    project: Path = typer.Argument(..., help="Project directory (holds graduate.yaml)."),
    student: str | None = typer.Option(None, "--student", help="Student to analyse (default: the best one)."),
    test_set: list[str] = typer.Option([], "--test-set", help="Test set to analyse; repeat for several (default: the quality sets)."),
    show: int = typer.Option(5, "--show", min=0, help="Items shown per group (the CSVs hold all)."),
    out: Path | None = typer.Option(None, "--out", help="Folder for the CSVs (default: PROJECT/.graduate/errors)."),
) -> None:
    """Group the newest evaluation's test items by who was right and export them for review."""
    from graduate.evaluate.error_analysis import GROUP_TITLES, GROUPS
    from graduate.pipeline.project import Project

    proj = Project.load(project)
    analysis = proj.error_analysis(student=student, test_sets=test_set or None)
    files = analysis.export(out or proj.workdir / "errors")

    tab = Table(title=f"who was right: {escape(analysis.student)} vs the teacher ({escape(proj.spec.teacher.model)})", title_justify="left")
    tab.add_column("test set")
    tab.add_column("items", justify="right")
    tab.add_column("both right", justify="right")
    tab.add_column("student right, no teacher answer", justify="right")
    for g in GROUPS:
        tab.add_column(GROUP_TITLES[g], justify="right")
    for ts, c in analysis.counts.items():
        tab.add_row(escape(ts), str(c["items"]), str(c["both_right"]), str(c.get("student_right_no_teacher", 0)), *[str(c[g]) for g in GROUPS])
    console.print(tab)

    for g in GROUPS:
        rows = analysis.group(g)
        if not rows or not show:
            continue
        t = Table(title=f"{GROUP_TITLES[g]}: {len(rows)} items, most confident first", title_justify="left", show_lines=False)
        for c in ["test set", "id", "text", "gold", "teacher", "student", "conf."]:
            t.add_column(c, justify="right" if c == "conf." else "left", overflow="fold", max_width=70 if c == "text" else None)
        for r in rows[:show]:
            text = " ".join(r["text"].split())
            t.add_row(
                escape(r["test_set"]), shown(r["external_id"]), shown(text[:160] + ("…" if len(text) > 160 else "")),
                escape(r["gold"]), escape(r["teacher_label"] or "–"), escape(r["student_label"]), fmt(r["student_confidence"], 2),
            )
        console.print(t)

    for ts, per in analysis.per_label.items():  # multi-label: where the student trails the teacher, label by label
        t = Table(title=f"{escape(ts)}: errors per label on the {next(iter(per.values()))['items'] if per else 0} items both answered (most behind the teacher first)", title_justify="left")
        for c in ["label", "student missed", "student added", "teacher missed", "teacher added", "student - teacher errors"]:
            t.add_column(c, justify="left" if c == "label" else "right")
        for lab, e in sorted(per.items(), key=lambda kv: -kv[1]["gap"]):
            t.add_row(escape(lab), str(e["student_fn"]), str(e["student_fp"]), str(e["teacher_fn"]), str(e["teacher_fp"]), f"{e['gap']:+d}")
        console.print(t)

    for ts in analysis.test_sets:
        worst = analysis.worst_slices.get(ts) or []
        gaps = analysis.gap_slices.get(ts) or []
        if worst:
            console.print(f"[bold]{escape(ts)}[/] weakest slices: " + "; ".join(f"{escape(w['name'])} {fmt(w['accuracy'])} ({w['answered']} items)" for w in worst[:3]), highlight=False)
        if gaps:
            console.print(f"[bold]{escape(ts)}[/] trails the teacher most on: " + "; ".join(f"{escape(g['name'])} {fmt(g['accuracy'])} vs {fmt(g['teacher_accuracy'])}" for g in gaps[:3]), highlight=False)

    console.print("\n[bold]Limitations[/]")
    for line in analysis.limitations:
        console.print(("  " if line.startswith("  ") else "- ") + escape(line.strip()), highlight=False)
    console.print(escape(f"\nreview queue: {', '.join(str(p) for p in files.values())}"), highlight=False)
