"""graduate privacy forget|purge|log: deletion on request and retention of raw requests and answers."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from graduate.cli.console import console, count_table

app = typer.Typer(help="Personal data: forget an item everywhere, purge raw requests past retention, the deletion log.", no_args_is_help=True)


@app.command("forget")
def forget(
    project: Path = typer.Argument(..., help="Project directory."),
    item: str | None = typer.Option(None, "--item", help="The item's id (its data file's id column), in any source."),
    match: str | None = typer.Option(None, "--match", help="Every stored text holding this text (at least 3 characters), e.g. an e-mail address."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be deleted (counts and a few examples); delete nothing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Delete without asking, also when more than one item, or calls no item accounts for, would go."),
) -> None:
    """Delete an item (or every text holding --match) from the call log, examples, labels,
    datasets, predictions, traffic and the files under .graduate/; a data file or log that still
    holds it adds nothing back. Trained students are not retrained: retrain them. A deletion of more
    than one item, or of calls and traffic rows that hold --match outside any item (a common word is
    in every prompt), is shown first and asked about (not interactive: refused without --yes)."""
    import sys

    from graduate.errors import PrivacyError
    from graduate.pipeline.project import Project

    proj = Project.load(project)
    if dry_run or not yes:
        plan = proj.forget_plan(item=item, match=match)
        if dry_run or plan.sweeping:
            _print_plan(plan, f"--item {item!r}" if item is not None else f"--match {match!r}", match)
        if dry_run:
            console.print("nothing deleted (--dry-run)", highlight=False)
            return
        if plan.sweeping:
            if not sys.stdin.isatty():
                raise PrivacyError("nothing deleted: this removes more than one item or call (listed above); check it, then run the same command with --yes")
            if not typer.confirm("Delete all of this for good?", default=False):
                console.print("nothing deleted", highlight=False)
                raise typer.Exit(1)
    report = proj.forget(item=item, match=match)
    if report.already_forgotten:
        console.print(escape(f"item {item!r} was already forgotten (a run stopped after its deletion): the database is compacted now"), highlight=False)
        return
    t = count_table(f"forgotten: {report.examples} items")
    for table, n in sorted(report.counts.items()):
        t.add_row(f"rows deleted from {table}", str(n))
    for f in report.files_rewritten:
        t.add_row(escape(f"file rewritten without it: {f}"), "")
    for f in report.files_removed:
        t.add_row(escape(f"file removed (the command that wrote it makes it again): {f}"), "")
    console.print(t)
    for ts in report.test_sets:
        console.print(
            escape(
                f"test set {ts['name']} held it: its next evaluation needs a new version (test_sets[].version: {ts['next_version']} in graduate.yaml)"
            )
        )
    console.print("Recorded in the deletion log (hashes and counts, never the text): `graduate privacy log`. Students trained on it keep what they learnt: retrain them.")


def _print_plan(plan, what: str, match: str | None) -> None:  # type: ignore[no-untyped-def]
    console.print(
        escape(f"{what} would delete {plan.items} items, {plan.calls} teacher calls and {plan.traffic} traffic rows, and the files under .graduate/ holding them"),
        highlight=False,
    )
    for e in plan.examples:
        text = " ".join(e["text"].split())
        console.print(escape(f"  item {e['source']}/{e['external_id']}: {text[:100]}{'…' if len(text) > 100 else ''}"), highlight=False)
    if plan.items > len(plan.examples):
        console.print(escape(f"  ... and {plan.items - len(plan.examples)} more items"), highlight=False)
    if plan.loose_calls or plan.loose_traffic:
        eg = f", e.g. {'; '.join(repr(s) for s in plan.loose_snippets)}" if plan.loose_snippets else ""
        console.print(
            escape(f"  {plan.loose_calls} of the calls and {plan.loose_traffic} traffic rows hold {match!r} outside any of these items (in a prompt, an answer or an error){eg}"),
            highlight=False,
        )


@app.command("purge")
def purge(project: Path = typer.Argument(..., help="Project directory.")) -> None:
    """Drop raw requests and answers older than privacy.retention_days: calls keep their label
    (the answer rewritten as the parsed label), hashes, tokens, cost and latency; traffic rows keep
    their labels and figures."""
    from graduate.pipeline.project import Project

    proj = Project.load(project)
    report = proj.purge()
    t = count_table(f"purged: older than {report.retention_days} days")
    t.add_row("teacher calls", str(report.calls))
    t.add_row("traffic rows", str(report.traffic))
    console.print(t)


@app.command("log")
def log(project: Path = typer.Argument(..., help="Project directory.")) -> None:
    """What `graduate privacy forget` deleted: when, item or match (as a hash), rows per table."""
    from graduate.pipeline.project import Project
    from graduate.store.forget import forget_log

    proj = Project.load(project)
    rows = forget_log(proj.engine)
    t = count_table(f"{len(rows)} deletions")
    for r in rows:
        t.add_row(escape(f"{r['created_at']:%Y-%m-%d %H:%M} {r['kind']} sha256:{r['what_hash'][:16]}"), escape(", ".join(f"{k} {v}" for k, v in sorted(r["counts"].items()))))
    console.print(t)
