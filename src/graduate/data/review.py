"""The review queue: export suspected teacher-label errors and teacher disagreements of the
training set to CSV, and import reviewers' corrections as human labels that win over the teacher's.

The CSV has the same columns as the review queues `graduate errors` writes (see
``graduate.evaluate.error_analysis``), so one importer reads both:

    example_id, source, external_id, test_set, text, gold, teacher_label, student_label,
    student_confidence, p_<label>..., group, reason, corrected_label, reviewer, note

For a training-set queue ``test_set`` is empty, ``gold`` holds the data's own label if it has one,
``teacher_label`` is the label the training set holds, ``student_*`` and ``p_*`` are out-of-fold
probabilities of the label-issue student, and ``group`` is ``label_issue`` (cleanlab suspects, most
suspect first) or ``teacher_disagreement`` (repeated answers or audited configurations disagree).

Import reads ``example_id`` (checked against ``source`` and ``external_id`` when given),
``corrected_label``, ``reviewer`` and ``note`` of the rows whose ``corrected_label`` is filled in.
A file without ``example_id`` names each item by ``source`` and ``external_id`` (the data's own id):
such a file can be kept with the project (``reviews:`` in graduate.yaml) and read into any copy of its store.
A correction is stored as a label of kind ``human`` by labeller ``human:REVIEWER``; a reviewer's
later different answer for the same item replaces their earlier one and the old value goes to
``label_changes`` (names are stripped; a label stored earlier under ``human: alice `` is alice's). Rows with an unknown id, an id that does not match its source/external_id, a
label that is not a task label, or no reviewer (or one whose name holds a control character or is too long
for the store: ``graduate.spec.names``) are skipped and counted, each with its line.

Multi-label tasks: ``teacher_label``, ``student_label`` and ``corrected_label`` hold label sets,
``;``-joined (``(none)`` for the empty set); ``p_<label>`` are per-label probabilities, the student's
set is the labels at p >= 0.5 and its confidence the least sure of those decisions; a cleanlab
suspect's ``reason`` names the labels at fault (``+care``: given, probably absent; ``-care``: not
given, probably present).
"""

from __future__ import annotations

import csv
import io
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from sqlalchemy import Engine, select, update

from graduate.errors import InputDataError, written_whole
from graduate.spec.names import reviewer_problem
from graduate.store.db import now
from graduate.store.schema import examples as examples_table
from graduate.store.schema import label_changes
from graduate.store.schema import labels as labels_table

HUMAN_PREFIX = "human:"
# The review-queue columns, shared by the training-set queue here and `graduate errors`.
REVIEW_FIXED = ["example_id", "source", "external_id", "test_set", "text", "gold", "teacher_label", "student_label", "student_confidence"]
REVIEW_TAIL = ["group", "reason", "corrected_label", "reviewer", "note"]


def review_columns(labels: Sequence[str]) -> list[str]:
    return REVIEW_FIXED + [f"p_{lab}" for lab in labels] + REVIEW_TAIL
GROUPS = ["label_issue", "teacher_disagreement", "served_disagreement"]


def set_human_label(conn: Any, ex_id: int, labeller: str, label: str, *, note: str | None, origin: str, created: Any, prior: tuple[int, str | None, str | None] | None) -> tuple[str, int]:
    """Store a person's label for an example (``prior``: their earlier (label id, label, note)):
    "unchanged", "changed" (the old one kept in label_changes) or "added", and the label's id."""
    if prior is not None and prior[1] == label:
        return "unchanged", prior[0]
    if prior is not None:
        conn.execute(update(labels_table).where(labels_table.c.id == prior[0]).values(label=label, note=note, created_at=created))
        conn.execute(
            label_changes.insert().values(example_id=ex_id, labeller=labeller, old_label=prior[1], new_label=label, old_note=prior[2], origin=origin, created_at=created)
        )
        return "changed", prior[0]
    lid = conn.execute(labels_table.insert().values(example_id=ex_id, kind="human", labeller=labeller, label=label, note=note, created_at=created)).inserted_primary_key[0]
    return "added", int(lid)


def record_feedback(engine: Engine, text: str, label: str, reviewer: str, *, origin: str, note: str | None = None) -> tuple[str, int, str | None]:
    """A person's answer for a served text (``POST /v1/feedback``): the text's example (an existing
    one with exactly this text, any source, else a new ``feedback`` example) gets a human label that
    wins in the next build. Returns (added | changed | unchanged, example id, the teacher's label if
    it differs)."""
    from graduate.data.examples import examples_for_texts

    from sqlalchemy.exc import IntegrityError
    from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

    (ex,) = examples_for_texts(engine, "feedback", [text], reuse_absent=False)  # an item taken out of its data file would keep it from every build
    labeller = HUMAN_PREFIX + reviewer
    # The same reviewer's feedback for this text may arrive twice at once (a retrying client): both
    # read "no prior label", one insert wins the (example, labeller) key and the other is read again
    # as a change (or no change) of the label just stored, not a 500.
    for attempt in Retrying(retry=retry_if_exception_type(IntegrityError), stop=stop_after_attempt(3), reraise=True):
        with attempt, engine.begin() as conn:
            prior_row = conn.execute(
                select(labels_table.c.id, labels_table.c.label, labels_table.c.note).where(
                    labels_table.c.example_id == ex.id, labels_table.c.kind == "human", labels_table.c.labeller == labeller
                )
            ).first()
            prior = (int(prior_row.id), prior_row.label, prior_row.note) if prior_row is not None else None
            status, _ = set_human_label(conn, ex.id, labeller, label, note=note, origin=origin, created=now(), prior=prior)
            teacher = conn.execute(
                select(labels_table.c.label).where(labels_table.c.example_id == ex.id, labels_table.c.kind == "teacher", labels_table.c.label.is_not(None))
            ).scalars().first()
    return status, ex.id, teacher if teacher is not None and teacher != label else None


def human_labels(engine: Engine, example_ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    """Per example: (label, labeller) of its newest human label."""
    ids = list(example_ids)
    out: dict[int, tuple[str, str]] = {}
    with engine.connect() as conn:
        for i in range(0, len(ids), 500):
            stmt = (
                select(labels_table.c.example_id, labels_table.c.label, labels_table.c.labeller)
                .where(labels_table.c.example_id.in_(ids[i : i + 500]), labels_table.c.kind == "human", labels_table.c.label.is_not(None))
                .order_by(labels_table.c.created_at, labels_table.c.id)
            )
            for ex, lab, who in conn.execute(stmt):
                out[ex] = (lab, who)
    return out


# -- export ---------------------------------------------------------------------------------------
def queue_rows(
    spec: Any,
    dataset: Any,
    gold: dict[int, str | None],
    disagreements: dict[int, str],
    *,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Review rows for a built dataset: cleanlab suspects (from the build's label-issue step, most
    suspect first), then items whose teacher answers disagree (``disagreements``: example id -> why)."""
    from graduate.formats import labelset

    labels = spec.task.labels
    multi = spec.task.multi_label
    issues = dataset.diagnostics.get("label_issues") or {}
    faults = issues.get("suspect_labels") or {}
    by_id = {ex.id: (ex, lab) for ex, lab in zip(dataset.examples, dataset.labels)}
    probs = issues.get("pred_probs", {})
    quality = issues.get("quality", {})
    rows: list[dict[str, Any]] = []
    listed: set[int] = set()

    def row(ex_id: int, group: str, reason: str) -> dict[str, Any]:
        ex, lab = by_id[ex_id]
        p = probs.get(ex_id)
        student_set = labelset.encode([n for n, x in zip(labels, p) if x >= 0.5], labels) if multi and p else None
        student = student_set if multi else (labels[max(range(len(labels)), key=lambda j: p[j])] if p else None)
        confidence = (labelset.confidence(student_set, p, labels) if multi else max(p)) if p else None
        return review_row(ex, labels, gold=gold.get(ex.id), teacher_label=lab, student_label=student, student_confidence=confidence, group=group, reason=reason, probs=p)

    for ex_id in issues.get("example_ids", []):
        if ex_id in by_id:
            q = quality.get(ex_id)
            if ex_id in faults:
                why = f"the cross-validated student doubts labels {', '.join(faults[ex_id])} of the teacher's set {by_id[ex_id][1]!r} (quality {q:.3f})"
            else:
                why = f"the cross-validated student gives the teacher's label {by_id[ex_id][1]!r} p={q:.3f}: probably mislabelled"
            rows.append(row(ex_id, "label_issue", why))
            listed.add(ex_id)
    for ex_id, why in disagreements.items():
        if ex_id in by_id and ex_id not in listed:
            rows.append(row(ex_id, "teacher_disagreement", why))
            listed.add(ex_id)
    return rows[:limit] if limit is not None else rows


def teacher_disagreements(engine: Engine, spec: Any, examples: Sequence[Any]) -> dict[int, str]:
    """Items whose stored teacher answers disagree: repeated answers to the spec teacher's request,
    or the labels of the audit configurations that answered them. Example id -> why, the least
    agreed first."""
    from graduate.data.labellers import MAX_SAMPLES
    from graduate.data.votes import config_answers
    from graduate.spec import audit_configs

    seen: dict[int, list[tuple[str, str]]] = {}
    main = config_answers(engine, spec.task, spec.teacher, examples, n=MAX_SAMPLES, record=False)
    for ex in examples:
        for k, lab in enumerate(main.by_example[ex.id].all_labels):
            if lab is not None:
                seen.setdefault(ex.id, []).append((f"answer {k + 1}", lab))
    for cfg in audit_configs(spec) if spec.audit.configs else []:
        if cfg.teacher.labeller == spec.teacher.labeller:
            continue
        got = config_answers(engine, spec.task, cfg.teacher, examples, n=cfg.n, record=False)
        for ex in examples:
            lab = got.label(ex.id)
            if lab is not None:
                seen.setdefault(ex.id, []).append((cfg.name, lab))
    out: list[tuple[float, int, str]] = []
    for ex_id, votes in seen.items():
        distinct = {lab for _, lab in votes}
        if len(distinct) > 1:
            top = max(sum(1 for _, lab in votes if lab == d) for d in distinct) / len(votes)
            out.append((top, ex_id, "teacher answers disagree: " + ", ".join(f"{who} {lab}" for who, lab in votes)))
    out.sort()
    return {ex_id: why for _, ex_id, why in out}


MAX_STORE_ID = 2**63 - 1  # the largest id a store's integer column holds


def check_queue_free(engine: Engine, path: Path, *, project: Path | str, option: str = "--output") -> None:
    """Refuse to write a review queue over one whose filled-in answers are not in the store yet:
    rows with a ``corrected_label`` for an item that has no human label (a reviewer's hour of work
    would be lost without a word). ``option``: the command's option for another file."""
    if not path.is_file():
        return
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            filled = [r for r in csv.DictReader(f) if (r.get("corrected_label") or "").strip()]
    except (OSError, UnicodeDecodeError, csv.Error):
        return  # not a queue we can read: nothing of a reviewer's to keep
    ids = []
    for r in filled:
        raw_id = (r.get("example_id") or "").strip()
        if raw_id.isascii() and raw_id.isdigit() and int(raw_id) <= MAX_STORE_ID:  # as import reads it (past 64 bits: an OverflowError)
            ids.append(int(raw_id))
    if not filled:
        return
    stored = human_labels(engine, ids)
    waiting = len(filled) - sum(1 for i in ids if i in stored)
    if waiting > 0:
        raise InputDataError(
            f"holds {waiting} reviewed rows (corrected_label filled in) that are not imported yet; import them first "
            f"(`graduate data review import {project} {path}`), or give {option} another file",
            path=path,
        )


def write_queue(path: Path, rows: Sequence[dict[str, Any]], labels: Sequence[str], *, extra: Sequence[str] = ()) -> Path:
    """The review CSV (cells guarded against spreadsheet formulas); ``extra``: more columns after
    the review columns (e.g. select's uncertainty), which import ignores."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = review_columns(list(labels)) + list(extra)
    with written_whole(path, newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({c: csv_cell(r.get(c)) for c in cols})
    return path


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(v: Any) -> Any:
    """A review-queue cell: a text a spreadsheet would run as a formula (``=cmd()``, ``@SUM(A1)``,
    a wiki heading ``== Talk ==``) gets a leading ``'``, which spreadsheets show as text and
    :func:`from_cell` takes off again on import."""
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6f}"
    if isinstance(v, str) and _guarded(v):
        return "'" + v
    return v


def _guarded(v: str) -> bool:
    # a formula start, or quotes before one (so that a text that really starts with "'=" comes back too)
    return v.lstrip("'").startswith(FORMULA_STARTS)


def from_cell(v: str) -> str:
    """A cell as written before :func:`csv_cell` guarded it."""
    return v[1:] if v.startswith("'") and _guarded(v[1:]) else v


# -- import ---------------------------------------------------------------------------------------
@dataclass
class ReviewImport:
    path: str
    rows: int = 0
    not_reviewed: int = 0  # no corrected_label: nothing to import
    added: int = 0  # new human labels
    unchanged: int = 0  # the reviewer had given the same label before
    changed: int = 0  # the reviewer's earlier label replaced (old value in label_changes)
    overrides_teacher: int = 0  # of added/changed: differs from a stored teacher label
    not_in_file: int = 0  # of added/changed: items their data file no longer holds (kept, not trained on)
    carried: int = 0  # reviewers' labels of such items carried onto a present item of the same text (its new id)
    skipped: list[str] = field(default_factory=list)  # "FILE:LINE: reason"


def import_review(
    engine: Engine,
    path: Path,
    labels: Sequence[str],
    *,
    reviewer: str | None = None,
    multi_label: bool = False,
    max_labels: int | None = None,
    none_word: str | None = None,
) -> ReviewImport:
    """Store the corrections of a review-queue CSV as human labels (see the module docstring).
    ``multi_label``: a correction is a label set (``;``-joined, ``(none)`` or the task's ``parse.none``
    word ``none_word`` for none, read by ``graduate.formats.labelset.read_cell`` as feedback is), stored
    canonically; a set of more than ``max_labels`` (the task's ``parse.max_labels``) is skipped, as a
    teacher's answer with as many is a parse failure."""
    from graduate.formats import labelset

    from graduate.data.csv_source import _open_text

    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    reader = csv.DictReader(io.StringIO(_open_text(path), newline=""))
    cols = reader.fieldnames or []
    by_key = "example_id" not in cols and {"source", "external_id"} <= set(cols)  # a file written for another copy of the project
    for need in ("corrected_label",) if by_key else ("example_id", "corrected_label"):
        if need not in cols:
            raise InputDataError(
                f"no {need!r} column; a review file has the columns `graduate data review export` (or `graduate errors`) writes"
                f" (or source and external_id in place of example_id): {cols}",
                path=path,
                column=need,
            )
    if "reviewer" not in cols and not reviewer:
        raise InputDataError("no 'reviewer' column and no --reviewer given: say who reviewed", path=path, column="reviewer")
    if reviewer is not None and (problem := reviewer_problem(reviewer.strip())) is not None:
        raise InputDataError(f"--reviewer {problem}", path=path, column="reviewer")
    report = ReviewImport(str(path))
    parsed: list[tuple[int, Any, str, str, str | None, dict[str, str]]] = []  # (line, store id or (source, external_id), label, reviewer, note, row)
    # rows are checked in two passes (the file's cells, then against the store): listed in file order
    skipped: list[tuple[int, str]] = []

    def skip(line: int, why: str) -> None:
        skipped.append((line, f"{path}:{line}: {why}"))

    def in_file_order() -> list[str]:
        return [msg for _, msg in sorted(skipped, key=lambda s: s[0])]

    next_start = reader.line_num + 1
    for row in reader:
        line, next_start = next_start, reader.line_num + 1  # where the row begins (a quoted text may span lines)
        report.rows += 1
        row = {k: from_cell(v) if isinstance(v, str) else v for k, v in row.items()}
        corrected = (row.get("corrected_label") or "").strip()
        if not corrected:
            report.not_reviewed += 1
            continue
        ex_id: int | tuple[str, str]
        if by_key:
            ex_id = ((row.get("source") or "").strip(), (row.get("external_id") or "").strip())
            if not all(ex_id):
                skip(line, "no source or external_id: say which item the label is for")
                continue
        else:
            raw_id = (row.get("example_id") or "").strip()
            # ASCII digits only: int() also reads "1_0" as 10 and "١" as 1 (another item), and a number
            # past 64 bits made the store's query an internal error
            if not (raw_id.isascii() and raw_id.isdigit()):
                skip(line, f"example_id {raw_id!r} is not a number")
                continue
            ex_id = int(raw_id)
            if ex_id > MAX_STORE_ID:
                skip(line, f"example_id {ex_id} is not in the store (was the queue exported from another project?)")
                continue
        if multi_label:
            try:
                label_set = labelset.read_cell(corrected, labels, none_word=none_word, max_labels=max_labels)
            except labelset.CellError as exc:
                skip(line, f"corrected_label {exc}")
                continue
            if label_set is None:  # only invisible characters: an empty cell
                report.not_reviewed += 1
                continue
            corrected = label_set
        elif corrected not in labels:
            skip(line, f"corrected_label {corrected!r} is not a task label {list(labels)}")
            continue
        who = (row.get("reviewer") or "").strip() or reviewer
        if not who:
            skip(line, "no reviewer (fill the reviewer column or pass --reviewer)")
            continue
        if (problem := reviewer_problem(who.strip())) is not None:  # stored as human:NAME and printed later
            skip(line, f"reviewer {problem}")
            continue
        who = who.strip()
        parsed.append((line, ex_id, corrected, who, (row.get("note") or "").strip() or None, row))
    if not parsed:
        report.skipped = in_file_order()
        return report
    with engine.begin() as conn:
        if by_key:
            found = _ids_by_key(conn, {p[1] for p in parsed})
            unknown = [(p[0], p[1]) for p in parsed if p[1] not in found]
            for line, (src, ext) in unknown:
                skip(line, f"{src}/{ext} is not in the store (is the source named as in this project's data:, and imported?)")
            parsed = [(line, found[key], *rest) for line, key, *rest in parsed if key in found]
        ids = sorted({p[1] for p in parsed})
        stored: dict[int, tuple[str, str]] = {}
        absent: set[int] = set()
        for i in range(0, len(ids), 500):
            for ex_id, source, ext, gone in conn.execute(
                select(examples_table.c.id, examples_table.c.source, examples_table.c.external_id, examples_table.c.absent_since).where(
                    examples_table.c.id.in_(ids[i : i + 500])
                )
            ):
                stored[ex_id] = (source, ext)
                if gone is not None:
                    absent.add(ex_id)
        teacher: dict[int, set[str]] = {}
        existing: dict[tuple[int, str], tuple[int, str | None, str | None]] = {}
        # Names were stored unstripped before they were stripped on the way in (a spec's
        # `reviewer: " alice "` was "human: alice "): the stripped name's labeller -> the one stored.
        unstripped: dict[tuple[int, str], str] = {}
        for i in range(0, len(ids), 500):
            for lid, ex_id, kind, who, lab, note in conn.execute(
                select(labels_table.c.id, labels_table.c.example_id, labels_table.c.kind, labels_table.c.labeller, labels_table.c.label, labels_table.c.note).where(
                    labels_table.c.example_id.in_(ids[i : i + 500]), labels_table.c.kind.in_(["teacher", "human"])
                )
            ):
                if kind == "teacher" and lab is not None:
                    teacher.setdefault(ex_id, set()).add(lab)
                elif kind == "human":
                    existing[(ex_id, who)] = (lid, lab, note)
                    if who.startswith(HUMAN_PREFIX) and (plain := HUMAN_PREFIX + who[len(HUMAN_PREFIX) :].strip()) != who:
                        unstripped[(ex_id, plain)] = who
        created = now()
        for line, ex_id, corrected, who, note, row in parsed:
            if ex_id not in stored:
                skip(line, f"example_id {ex_id} is not in the store (was the queue exported from another project?)")
                continue
            source, ext = stored[ex_id]
            given_source, given_ext = (row.get("source") or "").strip(), (row.get("external_id") or "").strip()
            if (given_source and given_source != source) or (given_ext and given_ext != ext):
                skip(
                    line,
                    f"example_id {ex_id} is {source}/{ext} in the store, not {given_source or '?'}/{given_ext or '?'}: the file does not match this project",
                )
                continue
            labeller = HUMAN_PREFIX + who
            prior = existing.get((ex_id, labeller))
            if prior is None and (ex_id, labeller) in unstripped:  # the same reviewer's earlier label, not a second reviewer's
                labeller = unstripped[(ex_id, labeller)]
                prior = existing[(ex_id, labeller)]
            if prior is not None and prior[1] == corrected:
                report.unchanged += 1
                continue
            if teacher.get(ex_id) and teacher[ex_id] != {corrected}:
                report.overrides_teacher += 1
            status, lid = set_human_label(conn, ex_id, labeller, corrected, note=note, origin=f"review import {path}:{line}", created=created, prior=prior)
            existing[(ex_id, labeller)] = (lid, corrected, note)
            report.not_in_file += ex_id in absent
            if status == "changed":
                report.changed += 1
            else:
                report.added += 1
        if report.not_in_file:  # an old id's review follows its text onto the item still in a data file, as a load carries it
            from graduate.data.examples import carry_reviews_in

            report.carried = sum(carry_reviews_in(conn).values())
    report.skipped = in_file_order()
    return report


def _ids_by_key(conn: Any, keys: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Store ids of the items named by (source, external_id)."""
    out: dict[tuple[str, str], int] = {}
    by_source: dict[str, list[str]] = {}
    for src, ext in keys:
        by_source.setdefault(src, []).append(ext)
    for src, exts in by_source.items():
        for i in range(0, len(exts), 500):
            q = select(examples_table.c.id, examples_table.c.external_id).where(examples_table.c.source == src, examples_table.c.external_id.in_(exts[i : i + 500]))
            for ex_id, ext in conn.execute(q):
                out[(src, ext)] = ex_id
    return out


def served_rows(engine: Engine, spec: Any, *, limit: int | None = None) -> list[dict[str, Any]]:
    """Review rows for served items where the teacher (asked in shadow, cascade or canary mode)
    disagreed with the student, newest first; each text becomes an example (source ``traffic``,
    or the one already holding it), so the reviewed label wins in the next build."""
    from graduate.data.examples import examples_for_texts, labels_for
    from graduate.store.traffic import shadow_disagreements

    rows = shadow_disagreements(engine, limit=limit)
    if not rows:
        return []
    texts = list(dict.fromkeys(r.text for r in rows if r.text is not None))
    examples = dict(zip(texts, examples_for_texts(engine, "traffic", texts, reuse_absent=False)))
    gold = labels_for(engine, [ex.id for ex in examples.values()], kind="gold")
    out, seen = [], set()
    for r in rows:
        ex = examples.get(r.text or "")
        if ex is None or ex.id in seen:
            continue
        seen.add(ex.id)
        reason = f"served {r.created_at:%Y-%m-%d %H:%M} ({r.mode}): the student said {r.student_label!r}, the teacher {r.teacher_label!r}"
        out.append(
            review_row(
                ex, spec.task.labels, gold=gold.get(ex.id), teacher_label=r.teacher_label, student_label=r.student_label,
                student_confidence=r.confidence, group="served_disagreement", reason=reason,
            )
        )
    return out


def review_row(
    ex: Any,
    labels: Sequence[str],
    *,
    gold: str | None,
    teacher_label: str | None,
    student_label: str | None,
    student_confidence: float | None,
    group: str,
    reason: str,
    probs: Sequence[float] | None = None,
) -> dict[str, Any]:
    """One row of the review CSV (``review_columns``), the reviewer's columns empty."""
    out: dict[str, Any] = {
        "example_id": ex.id,
        "source": ex.source,
        "external_id": ex.external_id,
        "test_set": None,
        "text": ex.text,
        "gold": gold,
        "teacher_label": teacher_label,
        "student_label": student_label,
        "student_confidence": student_confidence,
        "group": group,
        "reason": reason,
        "corrected_label": None,
        "reviewer": None,
        "note": None,
    }
    for j, name in enumerate(labels):
        out[f"p_{name}"] = probs[j] if probs else None
    return out
