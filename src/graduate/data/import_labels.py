"""Labels an earlier labeller gave, from a CSV (``label_imports`` in graduate.yaml): one column per
labeller, rows joined to a data source's items by id, stored as teacher labels of labeller
``import:COLUMN``. Importing again adds nothing; a changed cell replaces the stored label, and a
label the file no longer gives (its row deleted, its cell emptied or made unreadable, the item
labelled twice differently) is removed (both logged in ``label_changes``: the file is the truth for
what it says). A cell that is no task label, a label set past ``parse.max_labels``, or a row whose
id no item has, is skipped and named (file, line, column, value)."""

from __future__ import annotations

import csv
import io
import sys
from dataclasses import dataclass, field

from sqlalchemy import Engine, delete, select, update

from graduate.data.csv_source import _open_text
from graduate.errors import InputDataError
from graduate.formats import labelset
from graduate.spec import LabelImportSpec, TaskSpec
from graduate.store.db import insert_ignore, now
from graduate.store.schema import examples, label_changes, labels

PREFIX = "import:"


@dataclass
class LabelImportReport:
    path: str
    rows: int = 0
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    empty: int = 0
    removed: int = 0  # stored labels the file no longer gives (logged in label_changes)
    not_in_file: int = 0  # rows naming an item its data file no longer holds (an id_column changed?): kept, compared with nothing
    skipped: list[str] = field(default_factory=list)


def labeller_name(column: str) -> str:
    return PREFIX + column


def import_labels(engine: Engine, spec: LabelImportSpec, task: TaskSpec, *, shared: frozenset[str] = frozenset()) -> LabelImportReport:
    """``shared``: columns another label_imports file fills too (one labeller spread over files):
    a label this file does not give may come from the other, so those are never removed."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    path = spec.path
    if not path.exists():
        raise InputDataError("file not found; fix label_imports[].path", path=path)
    reader = csv.DictReader(io.StringIO(_open_text(path), newline=""))
    columns = reader.fieldnames or []
    for col in [spec.id_column, *spec.columns]:
        if col not in columns:
            raise InputDataError(f"no column {col!r}; the columns are {columns}; fix label_imports[] (id_column / columns)", path=path, column=col)
        if columns.count(col) > 1:  # a row read as a dict would keep only the last of them
            raise InputDataError.repeated_column(col, path=path, line=1)
    report = LabelImportReport(str(path))
    # `graduate predict`'s output (a p_<label> column per label) writes the empty set as an empty
    # `labels` cell; here an empty cell is no label (only (none) is the empty set), so such a cell of
    # a scored row is named, never taken silently for either.
    predicted = task.multi_label and all(f"p_{lab}" in columns for lab in task.labels)
    with engine.connect() as conn:
        stored_items = conn.execute(select(examples.c.external_id, examples.c.id, examples.c.absent_since).where(examples.c.source == spec.source)).all()
    ids = {r.external_id: r.id for r in stored_items}
    absent = {r.id for r in stored_items if r.absent_since is not None}
    rows: dict[tuple[int, str], str] = {}
    first_line: dict[tuple[int, str], int] = {}
    conflicts: set[tuple[int, str]] = set()
    for row in reader:
        report.rows += 1
        line = reader.line_num
        ext = (row.get(spec.id_column) or "").strip()
        ex = ids.get(ext)
        if ex is None:
            report.skipped.append(f"{path}:{line}: id {ext!r} is no item of data source {spec.source!r}")
            continue
        report.not_in_file += ex in absent
        for col in spec.columns:
            cell = (row.get(col) or "").strip()
            if not cell:
                if predicted and col == "labels" and any((row.get(f"p_{lab}") or "").strip() for lab in task.labels):
                    report.skipped.append(
                        f"{path}:{line}: column {col!r}: empty, which in `graduate predict`'s output is the empty set; an empty cell is no label here, so write {labelset.NONE} in it to import the empty set"
                    )
                    continue
                report.empty += 1
                continue
            if task.multi_label:  # read as a review file's cell and feedback are (graduate.formats.labelset.read_cell)
                try:
                    value = labelset.read_cell(cell, task.labels, separator=spec.separator or labelset.SEPARATOR, none_word=task.parse.none, values=spec.values, max_labels=task.parse.max_labels)
                except labelset.CellError as exc:
                    report.skipped.append(f"{path}:{line}: column {col!r}: {exc}")
                    continue
                if value is None:  # only invisible characters: an empty cell
                    report.empty += 1
                    continue
            elif (value := spec.values.get(cell, cell if not spec.values or cell == labelset.NONE else None)) not in task.labels:
                report.skipped.append(f"{path}:{line}: column {col!r}: {cell!r} is no label of {task.labels}")
                continue
            key = (ex, labeller_name(col))
            if key in conflicts:
                continue
            if key in rows and rows[key] != value:  # the same item labelled twice, differently: neither is guessed at
                report.skipped.append(f"{path}:{line}: column {col!r}: id {ext!r} is {rows[key]!r} at line {first_line[key]} and {value!r} here; neither is kept")
                conflicts.add(key)
                del rows[key]
                continue
            rows[key] = value  # type: ignore[assignment]
            first_line.setdefault(key, line)
    created = now()
    with engine.begin() as conn:
        stored = {
            (r.example_id, r.labeller): r.label
            for r in conn.execute(select(labels.c.example_id, labels.c.labeller, labels.c.label).where(labels.c.labeller.in_([labeller_name(c) for c in spec.columns])))
        }
        new = [{"example_id": ex, "kind": "teacher", "labeller": who, "label": lab, "created_at": created} for (ex, who), lab in rows.items() if (ex, who) not in stored]
        report.added = insert_ignore(conn, labels, new)
        for (ex, who), lab in rows.items():
            old = stored.get((ex, who), lab)
            if (ex, who) not in stored:
                continue
            if old == lab:
                report.unchanged += 1
                continue
            conn.execute(update(labels).where(labels.c.example_id == ex, labels.c.labeller == who).values(label=lab, created_at=created))
            conn.execute(label_changes.insert().values(example_id=ex, labeller=who, old_label=old, new_label=lab, origin=f"label import {path}: the file changed", created_at=created))
            report.changed += 1
        # what the file no longer says goes too, for this file's source and columns
        items = set(ids.values())
        own = {labeller_name(c) for c in spec.columns if c not in shared}
        for (ex, who), old in stored.items():
            if ex not in items or (ex, who) in rows or who not in own:
                continue
            conn.execute(delete(labels).where(labels.c.example_id == ex, labels.c.labeller == who))
            conn.execute(
                label_changes.insert().values(example_id=ex, labeller=who, old_label=old, new_label=None, origin=f"label import {path}: the file no longer gives it", created_at=created)
            )
            report.removed += 1
    return report


def stored_labels(engine: Engine, labellers: list[str], example_ids: list[int]) -> dict[str, dict[int, str | None]]:
    """Per labeller, its stored label of each of the examples it labelled."""
    out: dict[str, dict[int, str | None]] = {n: {} for n in labellers}
    with engine.connect() as conn:
        for i in range(0, len(example_ids), 500):
            stmt = select(labels.c.example_id, labels.c.labeller, labels.c.label).where(
                labels.c.labeller.in_(labellers), labels.c.example_id.in_(example_ids[i : i + 500])
            )
            for ex, who, lab in conn.execute(stmt):
                out[who][ex] = lab
    return out
