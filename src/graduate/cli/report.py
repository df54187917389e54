"""graduate report PROJECT: the one-file HTML report of the newest evaluation."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from graduate.cli.console import console


def report(
    project: Path = typer.Argument(..., help="Project directory (holds graduate.yaml)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Where to write the HTML (default: PROJECT/.graduate/report.html)."),
) -> None:
    """Write a self-contained HTML page: gates, students side by side, test sets, slices, bias, errors, cost, lineage."""
    from graduate.pipeline.project import Project

    path = Project.load(project).report(output)
    console.print(f"report written to [bold]{escape(str(path))}[/] ({path.stat().st_size / 1024:.0f} KB, one file, no external requests)")
