"""graduate runs list|show|compare: the project's tracked runs."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from graduate.cli.console import console
from graduate.errors import NotReadyError

app = typer.Typer(help="Tracked runs: every train and evaluate, with config, data and code versions, seed and metrics.", no_args_is_help=True)


def _number(value: float) -> str:
    """Four decimals, or four significant digits below 0.001 (a cost per item is 0.0000019, not 0.0000)."""
    if value == 0 or abs(value) >= 1e-3 or value != value:
        return f"{value:.4f}"
    import numpy as np

    return np.format_float_positional(value, precision=4, unique=False, fractional=False, trim="-")


def _short(value: object, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return escape(text if len(text) <= width else text[: width - 1] + "…")


@app.command("list")
def list_runs(
    project: Path = typer.Argument(..., help="Project directory."),
    kind: str | None = typer.Option(None, help="Only runs of this kind: train or evaluate."),
    last: int = typer.Option(50, min=1, help="Show the newest N runs."),
    mlflow: str | None = typer.Option(None, "--mlflow", help="Also log the listed finished runs to this MLflow tracking URI."),
) -> None:
    """Runs, oldest first: id, kind, name, status, seed, data hash, fit time, validation score (what picks the best student)."""
    from graduate.errors import SpecError
    from graduate.pipeline.project import Project
    from graduate.store.runs import get_runs

    if kind is not None and kind not in ("train", "evaluate"):
        raise SpecError(f"run kind {kind!r} is not train or evaluate", field="--kind")
    proj = Project.load(project)
    rows = get_runs(proj.engine, kind=kind, root=proj.root)[-last:]
    t = Table(title=f"{len(rows)} runs", title_justify="left")
    t.add_column("id", no_wrap=True, min_width=8)
    t.add_column("kind")
    t.add_column("name", overflow="fold")
    for c in ("status", "seed", "data", "started", "fit s", "validation"):
        t.add_column(c, justify="right" if c in ("seed", "fit s", "validation") else "left")
    for r in rows:
        m = r.metrics or {}
        t.add_row(
            r.id[:8], r.kind, escape(r.name), r.status + (" (interrupted)" if (r.error or "").startswith("interrupted") else ""), str(r.seed), (r.dataset_hash or "")[:8],
            r.started_at.strftime("%m-%d %H:%M") if r.started_at else "",
            f"{m['fit_seconds']:.1f}" if isinstance(m.get("fit_seconds"), (int, float)) else "",
            f"{v['score']:.3f}" if isinstance(v := (m.get("validation") or {}), dict) and isinstance(v.get("score"), (int, float)) else "",
        )
    console.print(t)
    if mlflow:
        from graduate.experiments.mlflow_log import log_runs

        logged = log_runs(mlflow, proj.spec.task.name, [r for r in rows if r.status != "running"])
        console.print(escape(f"logged {len(logged)} runs to MLflow at {mlflow}"), highlight=False)


@app.command("show")
def show(
    project: Path = typer.Argument(..., help="Project directory."),
    run: str = typer.Argument(..., help="Run id, id prefix or name."),
) -> None:
    """One run: its config (student, params, seed, data, code) and every metric."""
    from graduate.experiments.compare import flatten, run_config, run_metrics, find_run
    from graduate.pipeline.project import Project

    proj = Project.load(project)
    notes: list[str] = []
    r = find_run(proj.engine, run, root=proj.root, notes=notes)
    for note in notes:
        console.print(escape(note), highlight=False)
    console.print(f"[bold]{escape(r.name)}[/] " + escape(f"{r.id} ({r.kind}, {r.status}) started {r.started_at} finished {r.finished_at}"), highlight=False)
    if r.error:
        console.print(f"[red]error:[/] {escape(r.error)}", highlight=False)
    if r.artifact_dir:
        console.print(escape(f"artifacts: {r.artifact_dir}"), highlight=False)
    t = Table(title="config", title_justify="left")
    t.add_column("key", overflow="fold")
    t.add_column("value", overflow="fold")
    for k, v in flatten(run_config(r)).items():
        if not k.startswith("spec."):
            t.add_row(escape(k), _short(v, 100))
    console.print(t)
    t = Table(title="metrics", title_justify="left")
    t.add_column("key", overflow="fold")
    t.add_column("value", justify="right", overflow="fold")
    for k, v in run_metrics(r).items():
        t.add_row(escape(k), _number(v) if isinstance(v, float) else _short(v, 100))
    console.print(t)


@app.command("compare")
def compare(
    project: Path = typer.Argument(..., help="Project directory."),
    a: str = typer.Argument(..., help="First run: id, id prefix or name."),
    b: str = typer.Argument(..., help="Second run: id, id prefix or name."),
    all_keys: bool = typer.Option(False, "--all", help="Show keys that are the same too."),
) -> None:
    """Two runs side by side: the config and metric keys whose values differ."""
    from graduate.experiments.compare import compare_runs, find_run
    from graduate.pipeline.project import Project

    proj = Project.load(project)
    notes: list[str] = []
    ra, rb = find_run(proj.engine, a, root=proj.root, notes=notes), find_run(proj.engine, b, root=proj.root, notes=notes)
    for note in notes:
        console.print(escape(note), highlight=False)
    if ra.id == rb.id:
        raise NotReadyError(f"{a!r} and {b!r} are the same run ({ra.id[:8]}); give two runs (`graduate runs list PROJECT` shows their ids)")
    diffs = compare_runs(ra, rb, include_same=all_keys)
    t = Table(title=escape(f"{ra.name} ({ra.id[:8]}) vs {rb.name} ({rb.id[:8]})"), title_justify="left")
    t.add_column("section")
    t.add_column("key", overflow="fold")
    t.add_column(ra.id[:8], justify="right", overflow="fold")
    t.add_column(rb.id[:8], justify="right", overflow="fold")
    for d in diffs:
        fa = _number(d.a) if isinstance(d.a, float) else _short(d.a, 50)
        fb = _number(d.b) if isinstance(d.b, float) else _short(d.b, 50)
        t.add_row(escape(d.section), escape(d.key), fa, fb)
    console.print(t)
    if not diffs:
        console.print("the two runs have the same config and metrics")
