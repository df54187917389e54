"""graduate select PROJECT --budget N|USD: the unlabelled items worth the teacher's next calls."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from graduate.cli.console import console, count_table
from graduate.cli.label import say_unsent_and_failed


def select(
    project: Path = typer.Argument(..., help="Project directory."),
    budget: str = typer.Option(..., "--budget", "-b", help="How many items (500), or how much to spend ($5, 5usd, 5.00) at the teacher's estimated cost per call."),
    source: str | None = typer.Option(None, help="The pool's data source (default: train.source)."),
    tags: list[str] | None = typer.Option(None, "--tags", help="The pool's tag patterns (default: train.tags, or every item of --source); repeat for several."),
    send: bool = typer.Option(False, "--send", help="Send the chosen items to the teacher now (graduate label's client: cached, limited, budgeted)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Review-queue CSV of the chosen items (default: PROJECT/.graduate/select.csv)."),
    seed: int = typer.Option(0, min=0, max=2**32 - 1, help="Seed of the diversity clustering."),
) -> None:
    """Choose unlabelled pool items by the best student's uncertainty, spread over the pool (k-means
    over text vectors), within a budget; export them as a review queue or send them to the teacher."""
    from graduate.data.review import check_queue_free, review_row, write_queue
    from graduate.errors import check_output_file
    from graduate.formats import labelset
    from graduate.pipeline.active import parse_budget
    from graduate.pipeline.active import select as choose
    from graduate.pipeline.project import Project

    proj = Project.load(project)
    target = output or proj.workdir / "select.csv"
    check_output_file(target)  # before any work: a folder or a path under a file is refused in one line
    check_queue_free(proj.engine, target, project=project)  # a filled-in queue not imported yet is not written over
    sel = choose(proj, parse_budget(budget), source=source, tags=tags, seed=seed)
    # A review queue (`graduate data review import` reads corrected_label and reviewer back), with
    # each item's uncertainty beside it.
    multi = proj.spec.task.multi_label
    rows = [
        {
            **review_row(
                ex, sel.labels, gold=None, teacher_label=None, student_label=pred,
                student_confidence=round(labelset.confidence(pred, p, sel.labels) if multi else max(p), 4),
                group="select", reason=f"uncertainty {score:.4f}", probs=[round(float(v), 4) for v in p],
            ),
            "uncertainty": round(score, 4),
        }
        for ex, score, pred, p in zip(sel.chosen, sel.scores, sel.predicted, sel.probs)
    ]  # fmt: skip
    write_queue(target, rows, sel.labels, extra=["uncertainty"])
    t = count_table(f"select: {len(sel.chosen)} of {sel.unanswered} unanswered pool items (pool {sel.pool}), by {escape(sel.student)}")
    t.add_row("mean uncertainty of the chosen (0 sure .. 1 coin toss)", f"{sum(sel.scores) / len(sel.scores):.3f}" if sel.scores else "–")
    for lab in sorted(set(sel.predicted)):
        t.add_row(escape(f"student says {lab}"), str(sel.predicted.count(lab)))
    if sel.est_cost_usd is not None:
        t.add_row("estimated teacher cost", f"${sel.est_cost_usd:,.4f} (${sel.cost_per_call_usd:.5f} a call)")
    console.print(t)
    console.print(
        escape(f"review queue: {target} (fill corrected_label, then `graduate data review import {project} {target} --reviewer NAME`; or run with --send)"),
        highlight=False,
    )
    train_source = proj.spec.train.source
    if sel.chosen and sel.chosen[0].source != train_source:
        console.print(
            f"[yellow]note[/]: {escape(f'these items are from source {sel.chosen[0].source!r}, not train.source {train_source!r}: their labels (teacher or reviewer) reach training once train.source and train.tags take them in')}",
            highlight=False,
        )
    elif sel.outside_training:
        console.print(
            f"[yellow]note[/]: {escape(f'{sel.outside_training} of these items carry none of train.tags {proj.spec.train.tags}: their labels (teacher or reviewer) reach training once train.tags take them in')}",
            highlight=False,
        )
    console.print(escape(f"learning curve: {sel.curve_advice}" if sel.curve_advice else f"learning curve: none yet for this student (`graduate curve {project}` prices more labels)"), highlight=False)
    if not proj.spec.task.multi_label and sel.predicted:
        shares = ", ".join(f"{lab}: {v:.3f}" for lab, v in sel.pool_shares.items())
        console.print(
            escape(
                "Uncertain items lean to the rarer labels, which shifts the student's prior (benchmarks/bench_select.py); to keep the pool's, "
                f"build with clean.balance: {{strategy: prior, prior: {{{shares}}}}} (the student's estimate of the pool's shares)."
            ),
            highlight=False,
        )
    if not send:
        return
    _, stats = proj.label(proj.teacher_texts([ex.text for ex in sel.chosen]))
    console.print(escape(f"sent {stats.sent}, answered from the call log {stats.cached}, failed {stats.failed}, not sent {stats.not_sent}; cost ${stats.cost_usd:,.4f}"))
    say_unsent_and_failed(stats, proj.spec.teacher.budget_usd)  # as `graduate label` says it: the failures, their fix, what was left unsent

