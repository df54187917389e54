"""graduate monitor PROJECT: drift, agreement, latency and routing of served traffic; exits 1 when
a threshold of the spec's ``monitor`` section is crossed."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from graduate.cli.console import console, err_console, fmt, stage_progress
from graduate.cli.options import number


def monitor(
    project: Path = typer.Argument(..., help="Project directory."),
    hours: Optional[float] = typer.Option(None, parser=number("--hours", above=0, most=876_000), help="Window: the last N hours of traffic (monitor.window_hours)."),
    embedding: Optional[str] = typer.Option(None, help="auto | minilm | tfidf (monitor.embedding)."),
) -> None:
    """Check the served traffic against the training set and the spec's thresholds; writes .graduate/monitor.json."""
    from graduate.monitor import monitor_project
    from graduate.pipeline.project import Project

    from graduate.cli.options import apply_options
    from graduate.errors import SpecError

    proj = Project.load(project)
    given = {k: v for k, v in {"embedding": embedding, "window_hours": hours}.items() if v is not None}
    flags = {"embedding": "--embedding", "window_hours": "--hours"}
    # a problem of no one field (the window's bucket count) comes of --hours: the spec's own loaded
    settings = apply_options(
        proj.spec.monitor, given, lambda field, msg: SpecError(f"{msg} (got {given[field]!r})" if field in given else msg, field=flags.get(field, "--hours"))
    )
    with stage_progress() as progress:
        result = monitor_project(proj, window_hours=settings.window_hours, settings=settings, progress=progress)
    d = result.data
    t = Table(title=escape(f"{d['project']}: traffic {d['window']['since'][:19]} .. {d['window']['until'][:19]} UTC"), title_justify="left")
    t.add_column("figure")
    t.add_column("value", justify="right")
    t.add_row("items / requests", f"{d['traffic']['items']} / {d['traffic']['requests']}")
    t.add_row("answered by the teacher", fmt(d["routing"]["teacher_share"]))
    t.add_row("agreement with the teacher", f"{fmt(d['agreement']['agreement'])} ({d['agreement']['compared']} compared)")
    lat = d["latency_ms"]
    t.add_row("latency p50 / p99 ms", f"{fmt(lat['p50'], 2)} / {fmt(lat['p99'], 2)}")
    t.add_row("label shares traffic vs training", _shares(d["labels"]))
    length = d["drift"]["length"]
    t.add_row("length PSI / KS", f"{fmt(length.get('psi'))} / {fmt(length.get('ks_statistic'))}")
    emb = d["drift"]["embedding"]
    t.add_row(f"embedding drift AUC ({emb.get('method') or '–'})", fmt(emb.get("domain_auc")))
    console.print(t)
    unknown = {where: d["labels"].get(f"{where}_unknown") or 0 for where in ("traffic", "training")}
    if any(unknown.values()):
        console.print(
            "[yellow]left out of the label shares[/]: "
            + escape(
                f"{unknown['traffic']} served and {unknown['training']} training answers name a label that is not in task.labels "
                f"{list(proj.spec.task.labels)} (renamed or dropped since they were stored)"
            ),
            highlight=False,
        )
    future = d["future"]
    if future["items"]:
        console.print(
            "[yellow]warning[/]: "
            + escape(
                f"{future['items']} traffic rows are stamped up to {_span(future['ahead_s'])} ahead of this machine's clock (latest {future['latest'][:19]} UTC): "
                f"left out of this window until their time comes; is a server's clock ahead? (rows up to {_span(future['tolerance_s'])} ahead are counted)"
            ),
            highlight=False,
        )
    for c in result.checks:
        mark = {True: "[green]ok[/]", False: "[bold red]FAILED[/]", None: "[yellow]skipped[/]"}[c.ok]
        console.print(f"{mark} " + escape(f"{c.name}: {c.message}"), highlight=False)
    console.print(escape(f"wrote {proj.workdir / 'monitor.json'}"), highlight=False)
    if not result.ok:
        names = escape(", ".join(c.name for c in result.failed))
        err_console.print(f"[bold red]monitor: {len(result.failed)} check(s) failed[/]: {names}; thresholds are in graduate.yaml under monitor:")
        raise typer.Exit(1)


def _shares(labels: dict) -> str:
    if not labels.get("traffic"):
        return "–"
    if labels.get("per_label_psi"):  # multi-label: share of items carrying each label, PSI per label
        return escape(", ".join(f"{k} {labels['traffic'][k]:.2f} vs {labels['training'][k]:.2f} (PSI {fmt(labels['per_label_psi'][k])})" for k in labels["traffic"]))
    return escape(", ".join(f"{k} {labels['traffic'][k]:.2f} vs {labels['training'][k]:.2f}" for k in labels["traffic"]) + f" (PSI {fmt(labels.get('psi'))})")


def _span(seconds: float) -> str:
    """A duration as a person reads it: 90 s, 12 min, 3.5 h, 2.0 days."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
