"""graduate import batch|pairs: recorded teacher calls into the call log."""

from __future__ import annotations

from pathlib import Path

import typer

from rich.markup import escape

from graduate.cli.console import console, err_console

app = typer.Typer(help="Import recorded teacher calls into the call log.", no_args_is_help=True)


def _show(report) -> None:
    if report.already_imported:
        console.print(escape(f"{report.path}: already imported, nothing to do"), highlight=False)
        return
    console.print(
        f"{escape(str(report.path))}: read {report.read}, added {report.added}, already stored {report.skipped_existing}, "
        f"failed calls kept as errors {report.failed_calls}, bad lines skipped {len(report.problems)}"
        + (f", left out {report.forgotten} (they hold items `graduate privacy forget` deleted)" if report.forgotten else "")
    )
    for problem in report.problems[:10]:
        console.print(f"  skipped {escape(str(problem))}", highlight=False)
    if len(report.problems) > 10:
        console.print(f"  … and {len(report.problems) - 10} more")
    if report.problems:
        # A partial import must not look like a clean one, in a terminal or in a script.
        err_console.print(
            f"[bold red]error:[/] {len(report.problems)} lines skipped (listed above); "
            "the other lines are imported. Fix the skipped lines and import the files again: nothing is added twice.",
            highlight=False,
        )
        raise typer.Exit(1)


@app.command("batch")
def batch(
    project: Path = typer.Argument(..., help="Project directory."),
    input: Path = typer.Argument(..., help="Batch API input JSONL (custom_id, body)."),
    output: Path = typer.Argument(..., help="Batch API output JSONL (custom_id, response | error)."),
) -> None:
    """Import an OpenAI Batch API input/output pair (joined on custom_id)."""
    from graduate.pipeline.project import Project

    _show(Project.load(project).import_batch(input, output, "batch"))


@app.command("pairs")
def pairs(
    project: Path = typer.Argument(..., help="Project directory."),
    file: Path = typer.Argument(..., help='JSONL of {"request": {...}, "response": {...}} objects.'),
) -> None:
    """Import a JSONL of request/response pairs (e.g. from a logging proxy)."""
    from graduate.pipeline.project import Project

    _show(Project.load(project).import_batch(file, None, "pairs"))
