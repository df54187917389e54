"""Step 1, ingest: import the spec's teacher logs and load its data sources into the store (both
idempotent: a file already imported, an item already held, adds nothing)."""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

from graduate.data.csv_source import CsvReport, Item, read_items, require_items
from graduate.data.examples import SourceItems, load_sources
from graduate.privacy import redact_text
from graduate.data.import_calls import ImportReport, import_log
from graduate.data.import_labels import LabelImportReport, import_labels
from graduate.data.review import ReviewImport, import_review
from graduate.pipeline.progress import ProgressFn, no_progress
from graduate.formats.prompt import item_texts
from graduate.spec import SPEC_FILENAME, DataSourceSpec, ProjectSpec, audit_configs

if TYPE_CHECKING:
    from graduate.pipeline.project import Project


class LoadedSource(NamedTuple):
    name: str
    added: int
    report: CsvReport
    absent: int = 0  # stored items its file no longer holds: left out of builds and test sets, kept in the store
    back: int = 0  # items the file holds again after a load found them gone
    listed: bool = True  # False: a stored source the spec's data: no longer lists (renamed or removed), every item absent
    reviews_carried: int = 0  # reviewers' labels carried onto its items from absent items of the same text (an id_column changed, a source renamed)


@dataclass(frozen=True)
class Ingested:
    imports: list[ImportReport]
    loaded: list[LoadedSource]
    label_imports: list[LabelImportReport] = field(default_factory=list)
    reviews: list[ReviewImport] = field(default_factory=list)


def import_logs(project: "Project", progress: ProgressFn = no_progress) -> list[ImportReport]:
    logs = project.spec.teacher_logs
    reports = []
    for i, log in enumerate(logs):
        progress("import teacher logs", i, len(logs))
        reports.append(
            import_log(project.engine, log.input, log.output, price_for=project.spec.price_for, fmt=log.format, redactor=project.redactor, item_texts=prompt_texts(project.spec))
        )
    progress("import teacher logs", len(logs), len(logs))
    return reports


def import_batch(project: "Project", input_path: Path, output_path: Path | None, fmt: str = "batch") -> ImportReport:
    return import_log(project.engine, input_path, output_path, price_for=project.spec.price_for, fmt=fmt, redactor=project.redactor, item_texts=prompt_texts(project.spec))


def prompt_texts(spec: ProjectSpec) -> Callable[[list[dict[str, Any]]], list[str]]:
    """The item texts a recorded request may hold, by the project's prompts (teacher and audit configs)."""
    return item_texts([spec.teacher.prompt, *(c.teacher.prompt for c in audit_configs(spec))])


def read_source(spec: ProjectSpec, src: DataSourceSpec) -> tuple[list[Item], CsvReport]:
    """One data source's items and what was skipped; a file with no usable row is an error."""
    items, report = read_items(
        src.path,
        text_column=src.text_column or spec.task.text_column,
        id_column=src.id_column,
        gold_column=src.gold_column,
        gold_values=src.gold_values,
        labels=spec.task.labels,
        tags_column=src.tags_column,
        tag_separator=src.tag_separator,
        group_column=src.group_column,
        gold_separator=src.gold_separator,
        none_word=spec.task.parse.none,
    )
    require_items(items, report, src.path)
    return items, report


def load_data(project: "Project", progress: ProgressFn = no_progress) -> list[LoadedSource]:
    """Each data source of the spec as its file holds it now, then (after them) each stored source
    the spec no longer lists, its items all marked absent; written in one transaction."""
    spec = project.spec
    read = []
    for i, src in enumerate(spec.data):
        progress("load data", i, len(spec.data))
        items, report = read_source(spec, src)
        if project.input_redactor is not None:  # privacy.redact_teacher_input: stored and sent redacted
            items = [dataclasses.replace(it, text=redact_text(project.input_redactor, it.text)) for it in items]
        read.append((SourceItems(src.name, items, f"gold:{src.name}", src.path, src.id_column is None), report))
    loaded = load_sources(project.engine, [s for s, _ in read])
    progress("load data", len(spec.data), len(spec.data))
    out = [LoadedSource(s.name, got.added, report, got.absent, got.back, reviews_carried=loaded.carried.get(s.name, 0)) for (s, report), got in zip(read, loaded.loaded)]
    spec_file = str(project.root / SPEC_FILENAME)
    out += [LoadedSource(name, 0, CsvReport(spec_file), got.absent, got.back, listed=False) for name, got in loaded.unlisted.items()]
    return out


def load_label_imports(project: "Project", progress: ProgressFn = no_progress) -> list[LabelImportReport]:
    """The spec's ``label_imports`` (after the data: rows join its items)."""
    todo = project.spec.label_imports
    named = Counter(c for li in todo for c in li.columns)
    shared = frozenset(c for c, k in named.items() if k > 1)  # one labeller over several files
    out = []
    for i, li in enumerate(todo):
        progress("import earlier labels", i, len(todo))
        out.append(import_labels(project.engine, li, project.spec.task, shared=shared))
    if todo:
        progress("import earlier labels", len(todo), len(todo))
    return out


def load_reviews(project: "Project", progress: ProgressFn = no_progress) -> list[ReviewImport]:
    """The spec's ``reviews`` files, as human labels (after the data: rows name its items)."""
    todo = project.spec.reviews
    out = []
    for i, rv in enumerate(todo):
        progress("import review files", i, len(todo))
        out.append(import_review(project.engine, rv.path, project.spec.task.labels, reviewer=rv.reviewer, multi_label=project.spec.task.multi_label, max_labels=project.spec.task.parse.max_labels, none_word=project.spec.task.parse.none))
    if todo:
        progress("import review files", len(todo), len(todo))
    return out


def ingest(project: "Project", progress: ProgressFn = no_progress) -> Ingested:
    return Ingested(import_logs(project, progress), load_data(project, progress), load_label_imports(project, progress), load_reviews(project, progress))
