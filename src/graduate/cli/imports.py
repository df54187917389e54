"""graduate import batch|pairs: recorded teacher calls into the call log."""

from __future__ import annotations

from pathlib import Path

import typer

from graduate.cli.console import console

app = typer.Typer(help="Import recorded teacher calls into the call log.", no_args_is_help=True)


def _show(report) -> None:
    if report.already_imported:
        console.print(f"{report.path}: already imported, nothing to do")
        return
    console.print(
        f"{report.path}: read {report.read}, added {report.added}, already stored {report.skipped_existing}, "
        f"failed calls kept as errors {report.failed_calls}, bad lines skipped {len(report.problems)}"
    )
    for problem in report.problems[:10]:
        console.print(f"  skipped {problem}", highlight=False)
    if len(report.problems) > 10:
        console.print(f"  … and {len(report.problems) - 10} more")


@app.command("batch")
def batch(
    project: Path = typer.Argument(..., help="Project directory."),
    input: Path = typer.Argument(..., help="Batch API input JSONL (custom_id, body)."),
    output: Path = typer.Argument(..., help="Batch API output JSONL (custom_id, response | error)."),
) -> None:
    """Import an OpenAI Batch API input/output pair (joined on custom_id)."""
    from graduate.project import Project

    _show(Project.load(project).import_batch(input, output, "batch"))


@app.command("pairs")
def pairs(
    project: Path = typer.Argument(..., help="Project directory."),
    file: Path = typer.Argument(..., help='JSONL of {"request": {...}, "response": {...}} objects.'),
) -> None:
    """Import a JSONL of request/response pairs (e.g. from a logging proxy)."""
    from graduate.project import Project

    _show(Project.load(project).import_batch(file, None, "pairs"))
