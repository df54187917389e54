"""graduate predict PROJECT --input IN.csv --output OUT.csv: the best student labels a CSV."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from graduate.cli.console import console, err_console


def predict(
    project: Path = typer.Argument(..., help="Project directory."),
    input: Path = typer.Option(..., "--input", "-i", help="CSV to label (any size: it is streamed)."),
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the CSV with label and p_<label> columns."),
    text_column: str | None = typer.Option(None, help="Column with the text (default: task.text_column)."),
    batch_size: int = typer.Option(2048, min=1, help="Rows per prediction batch."),
) -> None:
    """Write the input's columns plus `label` and one `p_<label>` column per label."""
    from graduate.pipeline.project import Project
    from graduate.students.csv_predict import predict_csv

    proj = Project.load(project)
    student, run = proj.best_student()
    report = predict_csv(student, input, output, text_column=text_column or proj.spec.task.text_column, batch_size=batch_size)
    for n in report.empty_rows[:5]:
        err_console.print(escape(f"skipped {input}: row {n}: empty text (label left blank)"), highlight=False)
    console.print(
        escape(f"wrote {output}: {report.rows} rows ({report.empty} with empty text left blank) by {run.name} (run {run.id[:8]})"),
        highlight=False,
        soft_wrap=True,
    )
