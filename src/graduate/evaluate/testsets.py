"""Frozen test sets: the examples a selection names, with gold labels and a content hash."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from graduate.data.examples import Example, labels_for, select_examples, selection_examples
from graduate.formats import labelset
from graduate.errors import NotReadyError
from graduate.spec import ProjectSpec, SelectionSpec


@dataclass
class TestSet:
    __test__ = False  # not a pytest class

    name: str
    examples: list[Example]
    gold: list[str]
    content_hash: str
    without_gold: int


def gold_test_set(name: str, items: list[Example], gold: dict[int, str | None]) -> TestSet:
    """The items that have a gold label, as a test set; the hash covers ids, texts and gold."""
    kept = [ex for ex in items if gold.get(ex.id) is not None]
    labels = [gold[ex.id] for ex in kept]
    h = hashlib.sha256()
    for ex, lab in zip(kept, labels):
        h.update(f"{ex.source}\t{ex.external_id}\t{ex.text_hash}\t{lab}\n".encode())
    return TestSet(name, kept, labels, h.hexdigest(), len(items) - len(kept))  # type: ignore[arg-type]


def load_test_set(engine: Engine, selection: SelectionSpec) -> TestSet:
    """Examples of the selection that have a gold label (``gold_test_set``)."""
    pool = selection_examples(engine, selection)
    if not pool and not select_examples(engine, source=selection.source, tags=[]):
        raise NotReadyError(
            f"test set {selection.name!r}: data source {selection.source!r} has no items in the store yet; "
            "`graduate run PROJECT` imports every data source of graduate.yaml"
        )
    test = gold_test_set(selection.name, pool, labels_for(engine, [ex.id for ex in pool], kind="gold"))
    if not test.examples:
        raise NotReadyError(
            f"test set {selection.name!r} has no examples with gold labels (tags {selection.tags}); "
            "check data: gold_column and the tags in graduate.yaml"
        )
    return test


def check_test_set_gold(spec: ProjectSpec, spec_path: Path | str) -> None:
    """Before any work: every gold value in each test set's rows must be one of the task's labels.

    Reads the data files the test sets draw from; a value that maps to no label is a SpecError
    naming the test set, the file, the line and the fix (``gold_values``).
    """
    import csv
    import io
    import sys
    from fnmatch import fnmatchcase

    from graduate.data.csv_source import _open_text
    from graduate.errors import SpecError

    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    labels = spec.task.labels
    for i, t in enumerate(spec.test_sets):
        for src in spec.data:
            if (t.source is not None and src.name != t.source) or not src.gold_column or not Path(src.path).exists():
                continue
            reader = csv.DictReader(io.StringIO(_open_text(Path(src.path)), newline=""))
            if src.gold_column not in (reader.fieldnames or []):
                raise SpecError(
                    f"test set {t.name!r}: {src.path} has no gold column {src.gold_column!r}; the columns are {reader.fieldnames}",
                    path=spec_path,
                    field=f"data[{src.name}].gold_column",
                )
            for row in reader:
                if t.tags and t.tags != ["*"]:
                    tags = [x.strip() for x in (row.get(src.tags_column or "") or "").split(src.tag_separator)] if src.tags_column else []
                    if not any(fnmatchcase(tag, pat) for tag in tags for pat in t.tags):
                        continue
                cell = (row.get(src.gold_column) or "").strip()
                if src.gold_separator is not None:  # a label set, read as every other label-set cell is (labelset.read_cell)
                    try:
                        labelset.read_cell(cell, labels, separator=src.gold_separator, none_word=spec.task.parse.none, values=src.gold_values or None)
                    except labelset.CellError as exc:
                        fix = (
                            ("" if exc.code != "unknown_label" else f"; map it with data[{src.name}].gold_values, which every piece goes through when it is set"
                             if src.gold_values else f"; add it to task.labels or map it with data[{src.name}].gold_values")
                        )
                        raise SpecError(
                            f"{src.path}:{reader.line_num}: gold in column {src.gold_column!r}: {exc}{fix}",
                            path=spec_path,
                            field=f"test_sets[{i}] ({t.name})",
                        ) from None
                    continue
                if not cell:
                    continue
                gold = src.gold_values.get(cell, cell if not src.gold_values else None)
                if gold in labels:
                    continue
                fix = f"map it with data[{src.name}].gold_values (e.g. {{{cell!r}: {labels[0]}}})" if gold is None or src.gold_values else "add it to task.labels or map it with gold_values"
                raise SpecError(
                    f"{src.path}:{reader.line_num}: gold value {cell!r} in column {src.gold_column!r} is not a task label {labels}; {fix}",
                    path=spec_path,
                    field=f"test_sets[{i}] ({t.name})",
                )
