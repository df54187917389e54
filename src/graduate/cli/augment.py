"""graduate augment PROJECT --kind counterfactual: new training items made from the pool's."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from graduate.cli.console import console, count_table


def augment(
    project: Path = typer.Argument(..., help="Project directory."),
    kind: str = typer.Option("counterfactual", "--kind", help="counterfactual: swap a term of augment.term_lists for another of the same list, keeping the label."),
    target: str | None = typer.Option(
        None, "--target", help="Targeted additions for one weak slice (e.g. a term `graduate errors` or the bias pair names): only copies that put this term in."
    ),
) -> None:
    """Make new training items from the pool's labelled ones, stored with their lineage; the next
    build (graduate run) trains on them (augment.include)."""
    from graduate.pipeline.project import Project

    proj = Project.load(project)
    report = proj.augment(kind, target=target)
    cfg = proj.spec.augment.counterfactual
    t = count_table(
        escape(f"augment {report.method}: term list {cfg.terms}, up to {cfg.per_item} per item" + (f", labels {cfg.labels}" if cfg.labels else "") + (f", only {target!r} put in" if target else ""))
    )
    t.add_row("training items considered", str(report.considered))
    t.add_row("items naming a term", str(report.matching))
    t.add_row("new items added", str(report.added))
    t.add_row("copies already stored (not added again)", str(report.already_stored))
    for term, n in sorted(report.per_term.items(), key=lambda kv: -kv[1]):
        t.add_row(escape(f"  with {term!r} put in"), str(n))
    console.print(t)
    console.print(escape(f"`graduate run {project}` trains on them; `graduate data build {project}` shows the step that added them."), highlight=False)
