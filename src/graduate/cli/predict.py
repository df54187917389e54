"""graduate predict PROJECT --input IN.csv --output OUT.csv: the best student labels a CSV."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from graduate.cli.console import console, err_console
from graduate.cli.options import number


def predict(
    project: Path = typer.Argument(..., help="Project directory."),
    input: Path = typer.Option(..., "--input", "-i", help="CSV to label (any size: it is streamed)."),
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the CSV with label and p_<label> columns."),
    text_column: str | None = typer.Option(None, help="Column with the text (default: task.text_column)."),
    batch_size: int = typer.Option(2048, min=1, help="Rows per prediction batch."),
    ray: str | None = typer.Option(
        None,
        "--ray",
        # \\[: Typer renders help as Rich markup, where [ray] would be a style tag and vanish.
        help="Score on a Ray cluster with Ray Data: 'local' (start one here), 'auto', or its address (host:port, ray://host:port). "
        "--input may then be a quoted glob of CSV or Parquet files, --output a directory of Parquet files. Needs pip install 'graduate\\[ray]'.",
    ),
    actors: int | None = typer.Option(None, min=1, help="--ray: actors in the scoring pool (each loads the student once); default 1."),
    cpus_per_actor: float | None = typer.Option(None, parser=number("--cpus-per-actor", least=0.1), help="--ray: CPUs per actor; it runs that many threads; default 1."),
) -> None:
    """Write the input's columns plus `label` (multi-label: `labels`, the set `;`-joined, empty for none) and one `p_<label>` column per label.

    An import (label_imports, a review file) reads an empty cell as no answer: write (none) in such a cell to import the empty set."""
    from graduate.errors import SpecError
    from graduate.pipeline.project import Project
    from graduate.students.csv_predict import predict_csv

    if ray is None:
        for flag, value in (("--actors", actors), ("--cpus-per-actor", cpus_per_actor)):
            if value is not None:  # not silently ignored
                raise SpecError("only with --ray (the scoring pool on a Ray cluster); add --ray local, or leave it out", field=flag)
        for flag, path in (("--input", input), ("--output", output)):
            if path.suffix.lower() in (".parquet", ".pq"):
                raise SpecError(f"{path.name}: without --ray, predict reads and writes CSV; give a .csv file, or --ray ADDRESS for Parquet", field=flag)
    proj = Project.load(project)
    student, run = proj.best_student()
    if ray is not None:
        _predict_ray(proj, student, run, str(input), output, text_column, ray, actors or 1, cpus_per_actor or 1.0, batch_size)
        return
    report = predict_csv(student, input, output, text_column=text_column or proj.spec.task.text_column, batch_size=batch_size)
    for n in report.empty_rows[:5]:
        err_console.print(escape(f"{input}:{n}: empty text, label left blank"), highlight=False, soft_wrap=True)
    console.print(
        escape(f"wrote {output}: {report.rows} rows ({report.empty} with empty text left blank) by {run.name} (run {run.id[:8]})"),
        highlight=False,
        soft_wrap=True,
    )
    if report.no_label:
        more = ", ..." if report.no_label > 5 else ""
        _print_no_label(report.no_label, "input lines " + ", ".join(str(n) for n in report.no_label_rows[:5]) + more)


def _print_no_label(count: int, where: str) -> None:
    """Multi-label: rows given the empty set have an empty `labels` cell, as an empty text's, which an
    import reads as no answer."""
    console.print(
        escape(
            f"{count} rows given no label (the empty set) have an empty labels cell ({where}); "
            "an import (label_imports, a review file) reads an empty cell as no answer: write (none) there to import the empty set"
        ),
        highlight=False,
        soft_wrap=True,
    )


def _predict_ray(proj, student, run, pattern: str, output: Path, text_column: str | None, address: str, actors: int, cpus: float, batch_size: int) -> None:
    import time

    from graduate.cli.console import quiet_ray
    from graduate.pipeline.ray_predict import predict_ray

    quiet_ray()
    started = time.perf_counter()
    report = predict_ray(
        student, Path(run.artifact_dir), pattern, output, text_column=text_column or proj.spec.task.text_column, address=address,
        actors=actors, cpus_per_actor=cpus, batch_size=batch_size,
    )
    for source, n in report.empty_rows[:5]:  # Ray reads no file lines: named as its output names the row
        err_console.print(escape(f"{source} row {n}: empty text, label left blank"), highlight=False, soft_wrap=True)
    console.print(
        escape(
            f"wrote {report.output}: {report.rows} rows from {report.files} files ({report.empty} with empty text left blank) by {run.name} "
            f"(run {run.id[:8]}) on Ray ({report.actors} actors) in {time.perf_counter() - started:.1f} s"
        ),
        highlight=False,
        soft_wrap=True,
    )
    if report.no_label:  # Ray reads no file lines: the rows are named as its output names them
        named = ", ".join(f"{source} row {n}" for source, n in report.no_label_rows[:5]) + (", ..." if report.no_label > 5 else "")
        _print_no_label(report.no_label, f"{named}: source_file and row_number, which counts data rows, not file lines")
