"""Read items from a CSV: id, text, optional gold label and tags. Errors name file, line, column."""

from __future__ import annotations

import csv
import io
import sys
from dataclasses import dataclass, field
from pathlib import Path

from graduate.formats import labelset
from graduate.errors import InputDataError
from graduate.spec.text import is_blank


@dataclass
class Item:
    external_id: str
    text: str
    gold: str | None = None
    tags: list[str] = field(default_factory=list)
    group: str | None = None
    line: int | None = None  # where the row is in its data file, for messages


@dataclass
class CsvReport:
    path: str
    rows: int = 0
    skipped: list[str] = field(default_factory=list)


def _open_text(path: Path) -> str:
    if not path.exists():
        raise InputDataError("file not found", path=path)
    if path.is_dir():
        raise InputDataError("is a folder; name the CSV file in it", path=path)
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputDataError(
            f"not UTF-8 (byte 0x{data[exc.start]:02x}); re-save the file as UTF-8", path=path, line=line
        ) from None


_COLUMN_FIX = {
    "text": "set task.text_column (or the source's text_column) in graduate.yaml, or pass --text-column",
    "id": "set the source's id_column in graduate.yaml, or pass --id-column with one of these (or leave it out)",
    "gold": "set the source's gold_column in graduate.yaml to one of these",
    "tags": "set the source's tags_column in graduate.yaml to one of these",
    "group": "set the source's group_column in graduate.yaml to one of these",
}


def _check_quotes(path: Path, content: str, start: int, end: int) -> None:
    """Refuse a last row whose quoted field never closes: Python's csv module reads it to the end
    of the file as one field, silently swallowing every row after it."""
    # The csv reader's lines (its line_num): \n, \r or \r\n only; str.splitlines also breaks at
    # U+2028, NEL, form feed..., which put ``start`` inside an earlier field of a valid file.
    lines = io.StringIO(content, newline="").readlines()
    tail = "".join(lines[start - 1 :])
    strict = csv.reader(io.StringIO(tail, newline=""), strict=True)
    try:
        next(strict)
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            raise InputDataError(
                f"a quoted field opens on this line and is never closed, so every line after it would be read as one text; "
                "close the quote, or double the quote character inside the field (\"\")",
                path=path,
                line=start,
            ) from None
    except StopIteration:
        pass


def read_items(
    path: Path,
    *,
    text_column: str,
    id_column: str | None = None,
    gold_column: str | None = None,
    gold_values: dict[str, str] | None = None,
    labels: list[str] | None = None,
    tags_column: str | None = None,
    tag_separator: str = ";",
    group_column: str | None = None,
    gold_separator: str | None = None,
    none_word: str | None = None,
) -> tuple[list[Item], CsvReport]:
    """Rows with empty text, or a gold value that maps to no label, are skipped and reported.
    ``gold_separator`` (multi-label tasks): the gold cell holds a set of ``labels`` joined by it, read
    as review files and label imports are (``graduate.formats.labelset.read_cell``: any case, either
    Unicode form, ``(none)`` or the task's ``parse.none`` word ``none_word`` for the empty set); the
    item's gold is the set's canonical string, and a cell of only invisible characters is no gold."""
    if gold_separator is not None and labels is None:
        raise ValueError("read_items: gold_separator needs the task's labels to read label sets")
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    content = _open_text(path)
    reader = csv.DictReader(io.StringIO(content, newline=""))
    columns = reader.fieldnames or []
    for role, col in (("text", text_column), ("id", id_column), ("gold", gold_column), ("tags", tags_column), ("group", group_column)):
        if col is not None and col not in columns:
            raise InputDataError(
                f"no {role} column {col!r}; the columns are {columns}; {_COLUMN_FIX[role]}",
                path=path,
                column=col,
            )
    twice = sorted({c for c in (text_column, id_column, gold_column, tags_column, group_column) if c is not None and columns.count(c) > 1})
    if twice:
        raise InputDataError.repeated_column(twice[0], path=path)
    report = CsvReport(path=str(path))
    items: list[Item] = []
    seen: dict[str, int] = {}
    gold_values = gold_values or {}
    row_start = last_start = reader.line_num + 1
    for row in reader:
        line, last_start, row_start = reader.line_num, row_start, reader.line_num + 1
        report.rows += 1
        if None in row:  # cells past the header: the text was probably cut at an unquoted comma
            report.skipped.append(
                f"{path}:{line}: {len(row[None])} more cell(s) than the header's {len(columns)} columns; quote a text that holds commas (\"...\")"  # type: ignore[index]
            )
            continue
        # cells short of the header: a column the spec reads has no cell at all (not an empty one),
        # so its gold or tags are unknown, not absent
        short = [(role, col) for role, col in (("id", id_column), ("gold", gold_column), ("tags", tags_column), ("group", group_column)) if col is not None and row.get(col) is None]
        if short:
            fewer = sum(v is None for v in row.values())
            report.skipped.append(
                f"{path}:{line}: {fewer} cell(s) fewer than the header's {len(columns)} columns: no cell for column {short[0][1]!r} ({short[0][0]}); "
                "quote a text that holds line breaks (\"...\")"
            )
            continue
        text = row.get(text_column)
        if text is None or not text.strip():
            report.skipped.append(f"{path}:{line}: empty text in column {text_column!r}")
            continue
        if is_blank(text):  # zero-width spaces, BOMs, bidi marks: an item nobody can read, a teacher call paid for nothing
            report.skipped.append(f"{path}:{line}: text in column {text_column!r} shows nothing (only invisible characters: {text[:8]!r})")
            continue
        ext = (row.get(id_column) or "").strip() if id_column else str(report.rows)
        if not ext:
            report.skipped.append(f"{path}:{line}: empty id in column {id_column!r}")
            continue
        if ext in seen:
            report.skipped.append(f"{path}:{line}: id {ext!r} repeats line {seen[ext]}")
            continue
        seen[ext] = line
        gold = None
        if gold_column:
            raw = (row.get(gold_column) or "").strip()
            if raw and gold_separator is not None:  # read as every other label-set cell is (graduate.formats.labelset.read_cell)
                try:
                    gold = labelset.read_cell(raw, labels or [], separator=gold_separator, none_word=none_word, values=gold_values or None)
                except labelset.CellError as exc:
                    fix = (
                        ("" if exc.code != "unknown_label" else "; map it with the source's gold_values, which every piece goes through when it is set"
                         if gold_values else "; add it to task.labels or map it with the source's gold_values")
                    )
                    report.skipped.append(f"{path}:{line}: gold in column {gold_column!r}: {exc}{fix}")
                    continue
            elif raw:
                gold = gold_values.get(raw, raw if not gold_values else None)
                if gold is None or (labels is not None and gold not in labels):
                    report.skipped.append(
                        f"{path}:{line}: gold value {raw!r} in column {gold_column!r} is no label of {labels}"
                    )
                    continue
        tags = [t.strip() for t in (row.get(tags_column) or "").split(tag_separator) if t.strip()] if tags_column else []
        group = ((row.get(group_column) or "").strip() or None) if group_column else None
        items.append(Item(ext, text, gold, tags, group, line))
    # Only the last row can have run to the end of the file.
    if report.rows:
        _check_quotes(path, content, last_start, reader.line_num)
    return items, report


def require_items(items: list[Item], report: CsvReport, path: Path) -> None:
    """A data file with no usable row is an error naming why (a header alone, or the first skipped row)."""
    if items:
        return
    if not report.rows:
        raise InputDataError("has a header but no rows; add one item per row below it", path=path)
    first = report.skipped[0].removeprefix(f"{path}:")
    raise InputDataError(f"none of its {report.rows} rows can be used; the first: line {first}", path=path)
