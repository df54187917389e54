"""graduate augment PROJECT --kind counterfactual: new training items made from the pool's."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from graduate.cli.console import console, count_table, err_console
from graduate.errors import usd


def augment(
    project: Path = typer.Argument(..., help="Project directory."),
    kind: str = typer.Option(
        "counterfactual", "--kind",
        help="counterfactual: swap a term of augment.term_lists for another of the same list, keeping the label; "
        "paraphrase: the teacher rewrites items in other words and labels the rewrites again.",
    ),  # fmt: skip
    target: str | None = typer.Option(
        None, "--target", help="Targeted additions for one weak slice (e.g. a term `graduate errors` or the bias pair names): only copies that put this term in; "
        "paraphrase: items of this label, tag or term.",
    ),
    items: int | None = typer.Option(None, min=1, show_default="20", help="paraphrase: how many training items to rewrite."),
    per_item: int | None = typer.Option(None, min=1, max=10, show_default="3", help="paraphrase: rewrites asked per item."),
    seed: int | None = typer.Option(None, min=0, max=2**32 - 1, show_default="0", help="paraphrase: which items (another seed, other items; the same seed sends nothing twice)."),
) -> None:
    """Make new training items from the pool's labelled ones, stored with their lineage; the next
    build (graduate run) trains on them (augment.include)."""
    from graduate.errors import SpecError
    from graduate.pipeline.project import Project

    proj = Project.load(project)
    if kind == "paraphrase":
        report = proj.augment(kind, target=target, items=20 if items is None else items, per_item=3 if per_item is None else per_item, seed=seed or 0)
        show_generated(report, project, proj.spec.teacher.budget_usd, trained_on=proj.spec.augment.include)
        return
    given = [name for name, value in (("--items", items), ("--per-item", per_item), ("--seed", seed)) if value is not None]
    if given and kind == "counterfactual":  # they would be ignored: the copies follow augment.counterfactual
        raise SpecError(
            f"{', '.join(given)} {'apply' if len(given) > 1 else 'applies'} only to --kind paraphrase; counterfactual copies per item are set by augment.counterfactual.per_item in graduate.yaml",
            field=given[0],
        )
    # what graduate.yaml declares is in the store, as `graduate data build` has it (both idempotent)
    proj.import_logs()
    proj.load_data()
    report = proj.augment(kind, target=target)
    cfg = proj.spec.augment.counterfactual
    t = count_table(
        escape(f"augment {report.method}: term list {cfg.terms}, up to {cfg.per_item if isinstance(cfg.per_item, int) else ', '.join(f'{n} for {lab}' for lab, n in cfg.per_item.items())} per item" + (f", labels {cfg.labels}" if cfg.labels else "") + (f", only {target!r} put in" if target else ""))
    )
    t.add_row("training items considered", str(report.considered))
    t.add_row("items naming a term", str(report.matching))
    t.add_row("new items added", str(report.added))
    t.add_row("copies already stored (not added again)", str(report.already_stored))
    for term, n in sorted(report.per_term.items(), key=lambda kv: -kv[1]):
        t.add_row(escape(f"  with {term!r} put in"), str(n))
    console.print(t)
    console.print(escape(_next_step(project, proj.spec.augment.include, "them")), highlight=False)


def _next_step(project: Path, trained_on: bool, what: str) -> str:
    if not trained_on:
        return f"augment.include is false in graduate.yaml: builds leave {what} out; set it to true for `graduate run {project}` to train on {what}."
    return f"`graduate run {project}` trains on {what}; `graduate data build {project}` shows the step that added them."


def synth(
    project: Path = typer.Argument(..., help="Project directory."),
    target: str | None = typer.Option(None, "--target", help="What to write more of: a label, a tag (slice) of the pool, or a term the texts use (default: the whole pool)."),
    n: int = typer.Option(20, "--n", min=1, help="How many new texts to ask for."),
    seeds: int = typer.Option(5, "--seeds", min=1, max=50, help="Seed examples of the target shown in each call."),
    seed: int = typer.Option(0, min=0, max=2**32 - 1, help="Which seed examples (another seed, other ones; the same seed sends nothing twice)."),
) -> None:
    """The teacher writes new texts like the target's examples (Self-Instruct style); texts already
    held or near copies of the pool are dropped, the rest are labelled by the teacher and join the
    training pool with their lineage. Through the same client, cache, call log and budget."""
    from graduate.pipeline.project import Project

    proj = Project.load(project)
    show_generated(proj.synth(target=target, n=n, seeds=seeds, seed=seed), project, proj.spec.teacher.budget_usd, trained_on=proj.spec.augment.include)


def show_generated(report, project: Path, budget_usd: float, *, trained_on: bool = True) -> None:
    t = count_table(escape(f"{report.method}" + (f" for {report.target!r} ({report.target_kind})" if report.target else " for the pool") + f": {report.matching} matching training items"))
    for name, value in [
        ("teacher calls (sent / from the call log / failed)", f"{report.calls_sent} / {report.calls_cached} / {report.calls_failed}"),
        ("teacher calls not sent", report.calls_not_sent),
        ("texts written", report.generated),
        ("dropped: a label, not a text", report.label_shaped),
        ("dropped: already stored", report.stored_already),
        ("dropped: near copy of a pool item", report.near_pool),
        ("dropped: near copy of another new text", report.near_each_other),
        ("dropped: teacher label unreadable", report.unlabelled),
        ("new items added", report.added),
    ]:
        t.add_row(name, str(value))
    if report.method == "paraphrase":
        t.add_row("rewrites the teacher labelled differently from their item", str(report.label_changed))
    for lab, k in sorted(report.per_label.items()):
        t.add_row(escape(f"  labelled {lab}"), str(k))
    if report.diversity is not None:
        t.add_row("similarity to the nearest pool item: new / pool's own", f"{report.diversity.new_to_pool:.2f} / {report.diversity.pool_to_pool:.2f}")
    t.add_row("cost", f"${report.cost_usd:,.4f}")
    console.print(t)
    from graduate.pipeline.generate import shortfall

    if (short := shortfall(report)) is not None:
        console.print(escape(short), highlight=False)
    for e in report.errors[:3]:
        err_console.print(f"[red]failed:[/] {escape(str(e))}", highlight=False)
    if report.added:
        console.print(escape(_next_step(project, trained_on, "the new items")), highlight=False)
    if report.calls_retryable:
        err_console.print(
            f"[bold red]error:[/] {report.calls_retryable} teacher calls failed after every retry (timeouts, rate limits, server errors); "
            "run the same command again to retry them (what was added is kept)",
            highlight=False,
        )
    if report.calls_failed - report.calls_retryable:
        err_console.print(
            f"[bold red]error:[/] {report.calls_failed - report.calls_retryable} teacher calls were refused or cut off as sent, and a re-run would fail alike: "
            "fix the field of graduate.yaml that the messages above name, then run again (what was added is kept)",
            highlight=False,
        )
    if report.cut_stopped:
        err_console.print(
            f"[bold red]error:[/] the first answers were all cut off or held no text, so {report.calls_stopped} teacher calls were not sent "
            "(each would have been paid for and failed alike); fix what the messages above name, then run again (what was added is kept)",
            highlight=False,
        )
    if report.known_cut_advice:
        err_console.print(f"[bold red]error:[/] {escape(report.known_cut_advice)}", highlight=False)
    if report.budget_stopped:
        err_console.print(
            f"[bold red]error:[/] teacher budget of {usd(budget_usd)} reached; {report.budget_unsent} teacher calls not sent. Raise teacher.budget_usd in graduate.yaml "
            "and run the same command again (what was added is kept)",
            highlight=False,
        )
        raise typer.Exit(3)
    if report.calls_failed or report.calls_not_sent:
        raise typer.Exit(1)
