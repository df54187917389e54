"""graduate predict PROJECT --input IN.csv --output OUT.csv: the best student labels a CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import typer

from graduate.cli.console import console, err_console


def predict(
    project: Path = typer.Argument(..., help="Project directory."),
    input: Path = typer.Option(..., "--input", "-i", help="CSV to label."),
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the CSV with label and p_<label> columns."),
    text_column: str | None = typer.Option(None, help="Column with the text (default: task.text_column)."),
    batch_size: int = typer.Option(2048, min=1, help="Rows per prediction batch."),
) -> None:
    """Write the input's columns plus `label` and one `p_<label>` column per label."""
    from graduate.data.csv_source import _open_text
    from graduate.errors import InputDataError
    from graduate.project import Project

    proj = Project.load(project)
    student, run = proj.best_student()
    column = text_column or proj.spec.task.text_column
    reader = csv.DictReader(io.StringIO(_open_text(input), newline=""))
    fields = list(reader.fieldnames or [])
    if column not in fields:
        raise InputDataError(f"no text column {column!r}; the columns are {fields}; pass --text-column", path=input, column=column)
    rows = list(reader)
    empty = [i for i, r in enumerate(rows) if not (r.get(column) or "").strip()]
    for i in empty[:5]:
        err_console.print(f"skipped {input}: row {i + 1}: empty text in column {column!r} (label left blank)", highlight=False)
    texts = [r.get(column) or "" for r in rows]
    keep = [i for i in range(len(rows)) if i not in set(empty)]
    new_cols = ["label"] + [f"p_{lab}" for lab in student.labels]
    clash = [c for c in new_cols if c in fields]
    if clash:
        raise InputDataError(f"the input already has columns {clash}; rename them or write elsewhere", path=input)
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields + new_cols)
        w.writeheader()
        done = 0
        for start in range(0, len(keep), batch_size):
            idx = keep[start : start + batch_size]
            probs = student.predict_proba([texts[i] for i in idx])
            for j, i in enumerate(idx):
                rows[i]["label"] = student.labels[int(probs[j].argmax())]
                for k, lab in enumerate(student.labels):
                    rows[i][f"p_{lab}"] = f"{probs[j, k]:.6f}"
            done += len(idx)
        for r in rows:
            w.writerow(r)
    console.print(f"wrote {output}: {len(rows)} rows ({len(empty)} with empty text left blank) by {run.name} (run {run.id[:8]})")
