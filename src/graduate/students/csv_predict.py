"""Label a CSV of any size with a student, streaming: rows are read, predicted in batches and
written as they go, so memory holds one batch whatever the file's size. The output is the input's
columns plus ``label`` (multi-label: ``labels``, the set ';'-joined, empty for none) and ``p_<label>``
for every label; rows whose text is empty or blank (only invisible characters: ``graduate.spec.text``)
keep them blank."""

from __future__ import annotations

import collections
import csv
import io
import itertools
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, TextIO

from graduate.formats import labelset
from graduate.errors import InputDataError, check_output_file
from graduate.spec.text import is_blank
from graduate.students.base import Student


@dataclass
class PredictReport:
    rows: int = 0
    predicted: int = 0
    empty_rows: list[int] = field(default_factory=list)  # the file lines where they begin (the first 100)
    empty: int = 0
    # Multi-label: rows given the empty set, an empty `labels` cell (as an empty text's is: an import
    # reads an empty cell as no answer, so such a file is imported with (none) written there).
    no_label: int = 0
    no_label_rows: list[int] = field(default_factory=list)  # their lines in the input (the first 100)


def csv_rows(stream: TextIO, path: Path | str) -> Iterator[tuple[int, list[str]]]:
    """The rows of a CSV text stream (opened with ``newline=""``) as ``graduate predict`` reads
    them, locally and in ``--ray``'s read tasks alike: first ``(0, header)``, then each data row with
    the line where it begins (a quoted text may span lines), its cells padded with blanks to the
    header's width (a short row). Blank lines are skipped. A row with more cells than the header, a
    quoted field that never closes, a byte that is not UTF-8 (no line: the decoder reads ahead) or an
    empty file is an InputDataError naming ``path``."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    # ``tail`` holds the lines the csv module has read since the last rows were let go: at the end,
    # the last row's lines are read again, strictly (Python's csv module reads a quoted field that
    # never closes to the end of the file, as one text: the rows after it would vanish into it).
    lines, tail = itertools.tee(stream)
    reader = csv.reader(lines)
    start = 1
    try:
        header = next(reader, None)
        if header is None:
            raise InputDataError("empty file: no header row", path=path, line=1)
        yield 0, header
        width, at, row_start = len(header), 1, None  # at: the line ``tail`` is at (it has read nothing yet, not even the header)
        start = reader.line_num + 1
        for row in reader:
            row_start, start = start, reader.line_num + 1
            if len(row) != width:
                if not row:  # a blank line
                    continue
                if len(row) > width:  # cells beyond the header's columns: the output has nowhere to keep them
                    raise InputDataError(
                        f"{len(row)} cells but the header names {width} columns; quote a text that holds commas, or name the extra columns",
                        path=path,
                        line=reader.line_num,
                    )
                row += [""] * (width - len(row))  # a short row: the missing cells blank
            if row_start - at > 1024:  # let go of the lines before this row (bounded memory)
                collections.deque(itertools.islice(tail, row_start - at), maxlen=0)
                at = row_start
            yield row_start, row
        if row_start is not None:
            collections.deque(itertools.islice(tail, row_start - at), maxlen=0)
            try:
                for _ in csv.reader(io.StringIO("".join(tail), newline=""), strict=True):
                    pass
            except csv.Error as exc:
                if "unexpected end of data" in str(exc):
                    raise InputDataError(
                        "a quoted field opens on this line and never closes, so every row after it would be read into it; close the quote "
                        "(a quote inside a field is written twice: \"\")",
                        path=path,
                        line=row_start,
                    ) from None
    except UnicodeDecodeError as exc:
        raise InputDataError(f"not UTF-8 ({exc.reason}); re-save the file as UTF-8", path=path) from None
    except csv.Error as exc:
        raise InputDataError(f"not a readable CSV ({exc})", path=path, line=start) from None


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """``csv_rows`` of a local file, as dicts; a byte that is not UTF-8 is named by line and byte."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = csv_rows(f, path)
            _, names = next(rows)
            twice = next((n for n in names if names.count(n) > 1), None)
            if twice is not None:  # a dict row keeps only the last of them: the other column would be lost
                raise InputDataError.repeated_column(twice, path=path, line=1)
            yield 0, {name: name for name in names}
            for line, row in rows:
                yield line, dict(zip(names, row))
    except InputDataError as exc:
        if not exc.reason.startswith("not UTF-8") or (bad := _first_bad_utf8(path)) is None:
            raise
        raise InputDataError(f"not UTF-8 (byte 0x{bad[1]:02x}); re-save the file as UTF-8", path=path, line=bad[0]) from None


def _first_bad_utf8(path: Path) -> tuple[int, int] | None:
    """(line, byte) of the first byte that is not UTF-8, read line by line (a UTF-8 character never
    holds a newline byte, so no character spans two lines); the decoder's own error comes a buffer
    later and names no line."""
    with path.open("rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                return number, raw[exc.start]
    return None


def predict_csv(
    student: Student,
    source: Path,
    output: Path,
    *,
    text_column: str,
    batch_size: int = 2048,
    progress: Callable[[int], None] | None = None,
) -> PredictReport:
    """Write ``output`` from ``source``: every row, with the student's label and probabilities."""
    if not source.exists():
        raise InputDataError("file not found", path=source)
    if source.is_dir():
        raise InputDataError("is a folder; pass a CSV file (or a glob of them with --ray)", path=source)
    check_output_file(output)
    if output.exists() and output.samefile(source):  # the input would be replaced by the output
        raise InputDataError("is both the input and the output; write the predictions to another file (the input would be replaced)", path=source)
    rows = _rows(source)
    _, header = next(rows)
    fields = list(header)
    if text_column not in fields:
        raise InputDataError(f"no text column {text_column!r}; the columns are {fields}; pass --text-column", path=source, column=text_column)
    # Multi-label: ``labels``, the predicted set ';'-joined (empty for none), and each label's own probability.
    label_col = "labels" if student.multi_label else "label"
    new_cols = [label_col] + [f"p_{lab}" for lab in student.labels]
    clash = [c for c in new_cols if c in fields]
    if clash:
        raise InputDataError(f"the input already has columns {clash}; rename them or write elsewhere", path=source)
    report = PredictReport()
    partial = output.with_name(output.name + ".partial")
    try:
        _write(student, rows, partial, fields + new_cols, text_column, label_col, batch_size, progress, report)
    except InputDataError:
        partial.unlink(missing_ok=True)  # bad input found part-way: nothing half-written is left behind
        raise
    # Written whole or not at all: a crash leaves OUTPUT.partial, never a short OUTPUT.
    partial.replace(output)
    return report


def _write(
    student: Student,
    rows: Iterator[tuple[int, dict[str, str]]],
    partial: Path,
    columns: list[str],
    text_column: str,
    label_col: str,
    batch_size: int,
    progress: Callable[[int], None] | None,
    report: PredictReport,
) -> None:
    with partial.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        batch: list[dict[str, str]] = []
        lines: list[int] = []

        def flush() -> None:
            todo = [(r, n) for r, n in zip(batch, lines) if not is_blank(r.get(text_column) or "")]
            if todo:
                probs = student.predict_proba([r[text_column] for r, _ in todo])
                for (r, n), p, decided in zip(todo, probs, student.decide(probs)):
                    r[label_col] = ";".join(labelset.as_list(decided, student.labels) or []) if student.multi_label else decided
                    if student.multi_label and not r[label_col]:
                        report.no_label += 1
                        if len(report.no_label_rows) < 100:
                            report.no_label_rows.append(n)
                    for k, lab in enumerate(student.labels):
                        r[f"p_{lab}"] = f"{p[k]:.6f}"
                report.predicted += len(todo)
            writer.writerows(batch)
            if progress:
                progress(len(batch))
            batch.clear()
            lines.clear()

        for line, row in rows:
            report.rows += 1
            if is_blank(row.get(text_column) or ""):  # zero-width spaces, a BOM ...: nothing to label, as the loader skips them
                report.empty += 1
                if len(report.empty_rows) < 100:
                    report.empty_rows.append(line)
            batch.append(row)
            lines.append(line)
            if len(batch) >= batch_size:
                flush()
        flush()
