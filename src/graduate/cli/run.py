"""graduate run PROJECT: the whole distillation path, with a results table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from graduate.cli.console import console, fmt, fmt_usd, metric_rows, never_in_gold, stage_progress, step_notes, teacher_caption

METRICS = ["accuracy", "precision", "recall", "f1", "roc_auc", "fpr", "tpr"]


def run(project: Path = typer.Argument(..., help="Project directory (holds graduate.yaml).")) -> None:
    """Import teacher logs and data, build the training set, train students, evaluate against gold."""
    from graduate.pipeline.project import Project

    proj = Project.load(project)
    with stage_progress() as progress:
        summary = proj.run(progress)
    print_summary(summary, proj.spec.task.labels, proj.spec.task.positive, multi_label=proj.spec.task.multi_label)
    from graduate.cli.evaluate import print_gates

    print_gates(summary.get("gates") or [])
    console.print(f"summary written to [bold]{escape(str(proj.workdir / 'summary.json'))}[/]; report: [bold]{escape(str(summary.get('report')))}[/]", highlight=False)


def print_summary(s: dict[str, Any], labels: list[str], positive: str | None, *, multi_label: bool = False) -> None:
    ds = s["dataset"]
    counts = ds["recipe"].get("per_label_counts") if multi_label else None
    console.print(
        f"training set: {ds['size']} items {escape(str(counts or ds['label_counts']))}{' (items per label)' if counts else ''} labelled by {escape(s['teacher']['labeller'])} "
        f"(dataset {ds['content_hash'][:12]})"
    )
    unlearnt = [lab for lab, n in (counts or {}).items() if n == 0]
    if unlearnt:  # a spec label that never occurs in training: no student can learn to answer it
        console.print(escape(f"  no training item carries {', '.join(repr(lab) for lab in unlearnt)}: no student can learn to answer {'it' if len(unlearnt) == 1 else 'them'}"), highlight=False)
    for step in ds["recipe"]["steps"]:
        if step.get("dropped"):
            console.print(escape(f"  dropped {step['dropped']}: {step['reason']}"), highlight=False)
        if step.get("changed") and isinstance(step["changed"], int):  # reviewers' labels that replaced the teacher's
            console.print(escape(f"  changed {step['changed']}: {step['reason']}"), highlight=False)
        if step.get("added"):  # e.g. reviewers' labels for items whose teacher answer was dropped above
            console.print(escape(f"  added {step['added']}: {step['reason']}"), highlight=False)
        for note in step_notes(step):  # which teacher answers did not parse and why; a prior not reached
            console.print(escape(f"    {note}" if note.startswith("e.g.") else f"  {note}"), highlight=False)
    for d in s.get("data", []):
        if d.get("skipped_count"):
            console.print(escape(f"  data {d['source']}: {d['skipped_count']} of {d['rows']} rows skipped, e.g. {d['skipped'][0]}"), highlight=False)
        if d.get("absent") and not d.get("listed", True):
            from graduate.data.examples import UNLISTED_NOTE

            console.print(escape(f"  data {d['source']}: no longer listed under data: in {d['file']}; its {d['absent']} stored items are {UNLISTED_NOTE}"), highlight=False)
        elif d.get("absent"):
            from graduate.data.examples import ABSENT_NOTE

            console.print(escape(f"  data {d['source']}: {d['absent']} stored items are no longer in {d['file']}: {ABSENT_NOTE}"), highlight=False)
        if d.get("reviews_carried"):
            console.print(
                escape(f"  data {d['source']}: {d['reviews_carried']} reviewers' labels carried over from items of the same text no longer in a data file (an id_column changed, a source renamed)"),
                highlight=False,
            )
    for imp in s["imports"]:
        if imp["bad_lines_count"] or imp["failed_calls"] or imp.get("forgotten"):
            left_out = f", {imp['forgotten']} left out (items `graduate privacy forget` deleted)" if imp.get("forgotten") else ""
            console.print(escape(f"  import {Path(imp['path']).name}: {imp['failed_calls']} failed calls, {imp['bad_lines_count']} bad lines skipped{left_out}"), highlight=False)
    for li in s.get("label_imports", []):
        if li.get("skipped_count"):
            console.print(escape(f"  label import {Path(li['path']).name}: {li['skipped_count']} of {li['rows']} rows skipped, e.g. {li['skipped'][0]}"), highlight=False)
        if li.get("not_in_file"):  # e.g. the data source's id_column changed and the file still names the old ids
            console.print(
                escape(f"  label import {Path(li['path']).name}: {li['not_in_file']} of {li['rows']} rows name items no longer in their data file (is its id_column the data source's?): their labels are kept and compared with nothing"),
                highlight=False,
            )
        if li.get("removed"):
            console.print(escape(f"  label import {Path(li['path']).name}: {li['removed']} labels it no longer gives removed (the old values are in label_changes)"), highlight=False)
    for rv in s.get("reviews", []):
        new = (
            f"{rv['added']} new human labels, {rv['changed']} changed"
            if rv["added"] or rv["changed"]
            else f"nothing new ({rv['unchanged']} imported before)"
        )
        console.print(
            escape(f"  reviews {Path(rv['path']).name}: {rv['rows']} rows, {new}")
            + (escape(f"; {rv['skipped_count']} skipped, e.g. {rv['skipped'][0]}") if rv.get("skipped_count") else ""),
            highlight=False,
        )
    students = list(s["students"])
    for name, e in s["test_sets"].items():
        unscored = f" ({e['without_gold']} more without gold, not scored)" if e.get("without_gold") else ""
        t = Table(title=escape(f"{name}: {e['n']} items{unscored}, gold {e['label_counts']}"), title_justify="left")
        t.add_column("metric")
        t.add_column("teacher", justify="right")
        for st in students:
            t.add_column(escape(st) + (" *" if st == s["best_student"] else ""), justify="right")
        for m, row in metric_rows(METRICS, labels, positive, multi_label=multi_label):
            t.add_row(row, fmt(e["teacher"].get(m)), *[fmt(e["students"][st].get(m)) for st in students])
        itself = "1.000" if e["teacher"].get("answered") and not e["teacher"].get("too_few_answers") else "–"  # nothing, or too few, to agree with
        t.add_row("agreement w/ teacher", itself, *[fmt(e["students"][st].get("agreement_with_teacher")) for st in students])
        if not multi_label:
            t.add_row("kappa w/ teacher", itself, *[fmt(e["students"][st].get("kappa_with_teacher")) for st in students])
        t.add_row(
            "cost / 1k items",
            fmt_usd(s["teacher"]["cost_per_1k_usd"], s["teacher"]["cost_estimated"]),
            *[fmt_usd(e["students"][st].get("cost_per_1k_usd")) for st in students],
        )
        t.add_row("latency ms/item", "–", *[fmt(e["students"][st].get("latency_ms_per_item"), 3) for st in students])
        t.caption = teacher_caption(e["teacher"], e["n"])
        console.print(t)
        note = never_in_gold(name, e["label_counts"]) if multi_label else None
        if note:
            console.print(note, highlight=False)
        if e.get("labellers"):  # label_imports: earlier labellers against gold
            head = metric_rows(METRICS, labels, positive, multi_label=multi_label)[:3]
            lt = Table(title=escape(f"{name}: earlier labellers against gold"), title_justify="left")
            for c in ["labeller", "items", *[r for _, r in head]]:
                lt.add_column(c, justify="left" if c == "labeller" else "right", overflow="fold", min_width=30 if c == "labeller" else None)
            for who, figs in e["labellers"].items():
                lt.add_row(escape(who), str(figs.get("answered")), *[fmt(figs.get(m)) for m, _ in head])
            console.print(lt)
    console.print(f"teacher cost basis: {s['teacher']['cost_basis']}")
    why = (s.get("model_selection") or {}).get("why")
    console.print(f"best student: [bold]{escape(str(s['best_student']))}[/]{escape(f' ({why})') if why else ''}   total {s['timings']['total_s']:.1f}s", highlight=False)
