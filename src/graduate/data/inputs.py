"""Check every file the spec names before any work starts: a run that fails on its third input
after importing the first two leaves the user fixing one problem per run."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from graduate.errors import InputDataError, SpecError
from graduate.spec import ProjectSpec


def _header(path: Path) -> list[str]:
    with path.open("rb") as f:
        head = f.readline(1_000_000)
    try:
        line = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputDataError("not UTF-8 in its header line; re-save the file as UTF-8", path=path, line=1) from None
    return next(csv.reader(io.StringIO(line)), [])


def _has_rows(path: Path) -> bool:
    """Whether anything but blank lines follows the header line."""
    with path.open("rb") as f:
        f.readline(1_000_000)
        while chunk := f.read(1 << 16):
            if chunk.strip():
                return True
    return False


def _columns(path: Path, spec_path: Path, field: str, problems: list[SpecError]) -> list[str] | None:
    """The CSV's header, or None with the problem (missing file, not UTF-8) added."""
    if path.is_dir():
        problems.append(SpecError(f"{path} is a folder; name the CSV file in it", path=spec_path, field=f"{field}.path"))
        return None
    if not path.is_file():
        problems.append(SpecError(f"file not found: {path}; paths are relative to the project folder", path=spec_path, field=f"{field}.path"))
        return None
    try:
        return _header(path)
    except InputDataError as exc:
        problems.append(SpecError(str(exc), path=spec_path, field=f"{field}.path"))
        return None


def check_inputs(spec: ProjectSpec, spec_path: Path) -> None:
    """Raise one SpecError listing every missing file and missing column (file and field named)."""
    problems: list[SpecError] = []
    for i, d in enumerate(spec.data):
        field = f"data[{i}] ({d.name})"
        columns = _columns(d.path, spec_path, field, problems)
        if columns is None:
            continue
        wanted = {
            "text_column": d.text_column or spec.task.text_column,
            "id_column": d.id_column,
            "gold_column": d.gold_column,
            "tags_column": d.tags_column,
            "group_column": d.group_column,
        }
        for name, col in wanted.items():
            where = f"{field}.{name}" if name != "text_column" or d.text_column else "task.text_column"
            if col is not None and col not in columns:
                problems.append(SpecError(f"{d.path.name} has no column {col!r}; its columns are {columns}", path=spec_path, field=where))
            elif col is not None and columns.count(col) > 1:
                problems.append(SpecError(f"{d.path.name} names column {col!r} more than once in its header; rename the other one", path=spec_path, field=where))
        if not _has_rows(d.path):
            problems.append(SpecError(f"{d.path.name} has a header but no rows; add one item per row below it", path=spec_path, field=f"{field}.path"))
    for i, log in enumerate(spec.teacher_logs):
        for name, p in (("input", log.input), ("output", log.output)):
            if p is not None and not p.is_file():
                problems.append(SpecError(f"file not found: {p}; paths are relative to the project folder", path=spec_path, field=f"teacher_logs[{i}].{name}"))
    for i, li in enumerate(spec.label_imports):
        columns = _columns(li.path, spec_path, f"label_imports[{i}]", problems)
        if columns is None:
            continue
        for col in [li.id_column, *li.columns]:
            if col not in columns:
                problems.append(SpecError(f"{li.path.name} has no column {col!r}; its columns are {columns}", path=spec_path, field=f"label_imports[{i}]"))
            elif columns.count(col) > 1:
                problems.append(SpecError(f"{li.path.name} names column {col!r} more than once in its header; rename the other one", path=spec_path, field=f"label_imports[{i}]"))
    for i, rv in enumerate(spec.reviews):
        columns = _columns(rv.path, spec_path, f"reviews[{i}]", problems)
        if columns is None:
            continue
        named = "example_id" in columns or {"source", "external_id"} <= set(columns)
        if "corrected_label" not in columns or not named:
            problems.append(
                SpecError(
                    f"{rv.path.name} is not a review file: it needs corrected_label and example_id (or source and external_id); its columns are {columns}",
                    path=spec_path,
                    field=f"reviews[{i}]",
                )
            )
    if problems:
        raise SpecError.several(problems)
