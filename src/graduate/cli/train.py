"""graduate train PROJECT --ladder | --student KIND: train students as tracked runs and score them."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from graduate.cli.console import console, err_console, fmt, fmt_usd, quiet_libraries, stage_progress


def train(
    project: Path = typer.Argument(..., help="Project directory (holds graduate.yaml)."),
    ladder: bool = typer.Option(False, "--ladder", help="Climb the student ladder, smallest kind first; stop once the gates hold."),
    student: str | None = typer.Option(None, "--student", help="Train one student kind (its params from graduate.yaml if listed there)."),
    until: list[str] = typer.Option(
        [], "--until", help="A gate to climb to, e.g. 'student.accuracy >= 0.887 on test.balanced' (repeatable; replaces the spec's gates)."
    ),
    rungs: str | None = typer.Option(None, "--rungs", help="Comma-separated kinds to climb (default: every kind in the registry)."),
    mlflow: str | None = typer.Option(None, "--mlflow", help="Also log the runs to this MLflow tracking URI (e.g. sqlite:///mlflow.db, or http://127.0.0.1:5000 for a tracking server)."),
) -> None:
    """Train and score students; each is a tracked run (an identical earlier run is reused)."""
    from graduate.errors import SpecError
    from graduate.experiments.ladder import climb_ladder
    from graduate.pipeline.project import Project

    if ladder == (student is not None):
        raise SpecError("pass exactly one of --ladder or --student KIND", field="graduate train")
    proj = Project.load(project)
    if mlflow:
        from graduate.experiments.mlflow_log import check_tracking

        check_tracking(mlflow)  # before the training, not after it
    kinds = [student] if student else ([k.strip() for k in rungs.split(",") if k.strip()] if rungs else None)
    quiet_libraries()
    with stage_progress() as progress:
        result = climb_ladder(proj, kinds=kinds, gates=until or None, progress=progress)
    print_ladder(result)
    if mlflow:
        from graduate.experiments.mlflow_log import log_runs
        from graduate.store.runs import get_runs

        ids = {r.run_id for r in result.rungs} | {result.evaluation_run_id}
        logged = log_runs(mlflow, proj.spec.task.name, [r for r in get_runs(proj.engine, root=proj.root) if r.id in ids])
        console.print(escape(f"logged {len(logged)} runs to MLflow at {mlflow}"), highlight=False)


def print_ladder(result) -> None:  # type: ignore[no-untyped-def]
    from graduate.experiments.ladder import DEFAULT_GATE

    tests = list(result.teacher["tests"])
    on_validation = result.judged_on == "validation"
    title = f"student {result.rungs[0].kind}" if result.single and result.rungs else "student ladder (smallest first)"
    t = Table(title=escape(title), title_justify="left")
    t.add_column("rung")
    if on_validation:
        t.add_column(f"{result.metric} validation ({result.validation_items} held out, judged)", justify="right")
    for name in tests:
        t.add_column(escape(f"{result.metric} {name}"), justify="right")
    t.add_column("size MB", justify="right")
    t.add_column("train s", justify="right")
    t.add_column("latency ms/item", justify="right")
    t.add_column("cost / 1k", justify="right")
    t.add_column("gates", justify="center")
    t.add_row(
        escape(result.teacher["labeller"]),
        *([fmt((result.validation_teacher or {}).get(result.metric))] if on_validation else []),
        *[fmt(result.teacher["tests"][n].get(result.metric)) for n in tests],
        "–",
        "–",
        "–",
        fmt_usd(result.teacher["cost_per_1k_usd"], result.teacher["cost_estimated"]),
        "",
    )
    for r in result.rungs:
        gates = "met" if r.met else ("–" if not r.gates else "not met")
        t.add_row(
            escape(r.name) + (" (reused)" if r.reused else ""),
            *([fmt((r.validation or {}).get(result.metric))] if on_validation else []),
            *[fmt(r.tests.get(n, {}).get(result.metric)) for n in tests],
            f"{r.size_bytes / 1e6:.2f}" + (f" + {r.base_bytes / 1e6:.0f} base" if r.base_bytes else ""),
            f"{r.fit_seconds:.1f}",
            fmt(r.latency_ms(), 3),
            fmt_usd(r.cost_per_1k()),
            gates,
        )
    console.print(t)
    if on_validation:
        console.print(
            f"judged on {result.validation_items} training items held out from every rung, against their gold labels "
            "(model_selection); the test sets only report",
            highlight=False,
        )
    elif not result.single:
        err_console.print(f"[yellow]judged on the test sets[/]: {escape(result.judged_note)}; their figures are then no longer an independent report", highlight=False)
    for r in result.rungs:
        for g in r.gates:
            mark = "[green]pass[/]" if g.passed else "[red]fail[/]"
            console.print(f"  {escape(r.name)}: {mark} {escape(g.detail)}" + (f" on {escape(g.test_set)}" if g.test_set else ""), highlight=False)
    for text in result.skipped_gates:
        err_console.print(f"  not judged by the ladder (use `graduate evaluate`): {escape(text)}", highlight=False)
    if result.default_gate:
        console.print(
            f"no gates in graduate.yaml: {'judged' if result.single else 'climbed until'} [bold]{escape(DEFAULT_GATE)}[/] "
            f"{'on the validation items' if on_validation else 'on every quality test set'} "
            "(add gates: or pass --until to choose)",
            highlight=False,
        )
    if result.left_out:
        console.print(
            f"left out on this CPU-only machine: {', '.join(result.left_out)} (fine-tuning an LLM takes hours per epoch without a GPU); "
            "name it in --rungs to train it anyway",
            highlight=False,
        )
    if result.single:
        r = result.rungs[0] if result.rungs else None
        if r is not None and r.gates:
            console.print(f"{escape(r.name)}: {'every gate holds' if r.met else '[yellow]a gate fails[/] (see above)'}", highlight=False)
    elif result.stopped_at:
        console.print(f"stopped at [bold]{escape(result.stopped_at)}[/]: every gate holds")
    elif not any(r.gates for r in result.rungs):  # every gate was one the ladder cannot judge: none failed
        console.print("[yellow]no gate could be judged by the ladder[/], so it climbed every rung; judge them with `graduate evaluate`")
    else:
        console.print("[yellow]no rung met every gate[/]; see the failing gates above")
