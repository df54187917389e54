"""graduate check / spec-help: validate a spec, list the fields a spec may have."""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import BaseModel
from rich.markup import escape
from rich.table import Table

from graduate.cli.console import console
from graduate.spec.base import type_name


def check(project: Path = typer.Argument(..., help="Project directory or spec file.")) -> None:
    """Validate graduate.yaml and the files it names, without doing any work."""
    from graduate.errors import SpecError
    from graduate.pipeline.validate import load_checked_spec as load_spec

    from graduate.data.inputs import check_inputs

    from graduate.pipeline.validate import check_student_models

    spec, root = load_spec(project)
    check_inputs(spec, root / "graduate.yaml")
    check_student_models(spec, path=root / "graduate.yaml")
    from graduate.evaluate.testsets import check_test_set_gold

    check_test_set_gold(spec, root / "graduate.yaml")
    from graduate.pipeline.ingest import read_source

    for src in spec.data:
        items, report = read_source(spec, src)
        if report.skipped:
            console.print(escape(f"data {src.name}: {len(items)} items; {len(report.skipped)} rows will be skipped:"), highlight=False)
            for line in report.skipped[:5]:
                console.print(escape(f"  {line}"), highlight=False)
            if len(report.skipped) > 5:
                console.print(f"  … and {len(report.skipped) - 5} more", highlight=False)
    console.print("[green]ok[/]: " + escape(f"{root / 'graduate.yaml'} ({spec.task.name}: labels {spec.task.labels}, teacher {spec.teacher.labeller})"), highlight=False)


def _rows(model: type[BaseModel], prefix: str, table: Table) -> None:
    for name, field in model.model_fields.items():
        ann = field.annotation
        kind = type_name(ann)
        # Escaped: `pip install 'graduate[serve]'` and `[train*]` are text, not Rich markup.
        table.add_row(escape(prefix + name), escape(kind), escape(field.description or ""))
        for sub in getattr(ann, "__args__", ()) + (ann,):
            if isinstance(sub, type) and issubclass(sub, BaseModel):
                _rows(sub, f"{prefix}{name}.", table)


def spec_help() -> None:
    """Every field graduate.yaml accepts, with its type and meaning."""
    from graduate.spec import ProjectSpec

    t = Table(title="graduate.yaml fields", title_justify="left")
    # Long field names and install commands wrap (fold) at any width instead of being cut with "…".
    t.add_column("field", overflow="fold", min_width=12)
    t.add_column("type", overflow="fold", max_width=20)
    t.add_column("meaning", overflow="fold", ratio=1)
    _rows(ProjectSpec, "", t)
    console.print(t)
