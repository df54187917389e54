"""Store items as examples (with their gold labels) and select them by source and tags."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Iterable, Sequence

from sqlalchemy import Engine, and_, select, update

from graduate.data.csv_source import Item
from graduate.data.text import text_hash
from graduate.errors import InputDataError
from graduate.privacy import PLACEHOLDER
from graduate.spec.data import LABEL_FILE_PREFIX, MADE_SOURCES
from graduate.store.db import insert_ignore, now
from graduate.store.schema import examples, forgotten_keys, label_changes, labels


@dataclass
class Example:
    id: int
    source: str
    external_id: str
    text: str
    text_hash: str
    tags: list[str]
    group: str | None = None
    absent: bool = False  # its data file no longer holds it (examples_for_texts reports it; selections leave such items out)


def add_examples(engine: Engine, source: str, items: Iterable[Item], *, gold_labeller: str | None = None, path: Path | str | None = None) -> int:
    """Insert items not yet stored (keyed by source and id); gold labels go in as kind=gold.

    Returns how many examples were added. An item already stored keeps its example, and the file
    wins for what may change: its tags and group are updated, and a changed gold label replaces the
    stored one (logged in ``label_changes``), so the frozen-test-set check sees the change. A stored
    id whose text changed is refused (InputDataError): one id never stands for two texts. An item
    forgotten with ``graduate privacy forget`` (its text hash is kept) is never added again.
    """
    with engine.begin() as conn:
        return add_examples_in(conn, source, items, gold_labeller=gold_labeller, path=path)


# Why an item its data file no longer holds is not trained on or tested (recipe, run, status).
ABSENT_NOTE = "left out of training and test sets, kept in the store with their labels and teacher calls (they count again when the file holds them again)"
# The same for every item of a source no longer listed under the spec's data:.
UNLISTED_NOTE = "left out of training and test sets, kept in the store with their labels and teacher calls (they count again when the source is listed again)"
# Why `graduate label --input FILE` (and `batch submit --input`) leaves such a text alone.
NOT_LABELLED_NOTE = "rows not labelled: their text is an item no longer in its data file (left out of training and test sets); put the row back in its data file to label it"


def from_data_file(source: str) -> bool:
    """Whether a stored source is (or was) one of the spec's data files (a spec's data: never names
    the sources graduate fills itself, so they are never marked absent for not being listed)."""
    return source not in MADE_SOURCES and not source.startswith(LABEL_FILE_PREFIX)


@dataclass(frozen=True)
class SourceLoad:
    added: int  # items stored for the first time
    absent: int  # stored items of the source its file no longer holds (left out of builds and test sets)
    back: int  # items marked absent before that the file holds again


@dataclass(frozen=True)
class SourceItems:
    """One data file's items, as ``load_sources`` takes them."""

    name: str
    items: list[Item]
    gold_labeller: str | None = None
    path: Path | str | None = None
    row_numbers: bool = False  # its ids are row numbers (no id_column)


@dataclass(frozen=True)
class SourcesLoad:
    loaded: list[SourceLoad]  # one per given source, in order
    unlisted: dict[str, SourceLoad]  # stored sources no data file was given for: every item absent
    carried: dict[str, int]  # per source: reviewers' labels carried onto its items from absent items of the same text


def load_sources(engine: Engine, sources: Sequence[SourceItems]) -> SourcesLoad:
    """Each data file's items, as its file holds them now: ``add_examples``, then the stored items
    of the source the file no longer holds (a deleted row, an id_column changed) are marked absent:
    builds, test sets and selections leave them out, nothing of theirs is deleted (labels, reviews,
    teacher calls stay), and they count again when the file holds them again. A stored source not
    among ``sources`` (renamed or removed from the spec's data:) has all its items marked absent the
    same way. A reviewer's label of an absent item is carried onto a present item with the same text
    unless that reviewer's label there is newer (``carry_reviews_in``). One transaction: after a kill none of
    it is written."""
    with engine.begin() as conn:
        loaded = [_load_source_in(conn, s) for s in sources]
        listed = {s.name for s in sources}
        stored = conn.execute(select(examples.c.source).distinct()).scalars().all()
        unlisted = {name: _load_source_in(conn, SourceItems(name, [])) for name in sorted(stored) if name not in listed and from_data_file(name)}
        carried = carry_reviews_in(conn)
    return SourcesLoad(loaded, unlisted, carried)


def _reviews_of_absent(conn: Any) -> list[Any]:
    """Reviewers' labels of absent items of data files, each with the present items of the same text
    (``new_id`` None where there is none), oldest first."""
    old, new = examples.alias("old"), examples.alias("new")
    stmt = (
        select(
            labels.c.labeller, labels.c.label, labels.c.note, labels.c.created_at, old.c.id.label("old_id"), old.c.source.label("old_source"),
            old.c.external_id.label("old_external_id"), new.c.id.label("new_id"), new.c.source.label("new_source"),
        )
        .join(old, old.c.id == labels.c.example_id)
        .outerjoin(new, and_(new.c.text_hash == old.c.text_hash, new.c.absent_since.is_(None)))
        .where(labels.c.kind == "human", labels.c.label.is_not(None), old.c.absent_since.is_not(None))
        .order_by(labels.c.created_at, labels.c.id)
    )
    return [r for r in conn.execute(stmt) if from_data_file(r.old_source)]


def _carries(r: Any) -> bool:
    """Whether a review of an absent item goes onto this present item: one of a data file."""
    return r.new_id is not None and from_data_file(r.new_source)


def carry_reviews_in(conn: Any) -> dict[str, int]:
    """A reviewer's label of an item no longer in its data file (its id_column changed, its source
    renamed) onto each present item with the same text, the carry logged in ``label_changes``: added
    where that reviewer has no label there, and replacing theirs there when the old item's review is
    newer (a later re-review of the old id follows the text as the first did: the latest review
    wins); an item that comes back keeps its own. Per source: how many labels were added or changed."""
    rows = [r for r in _reviews_of_absent(conn) if _carries(r)]
    if not rows:
        return {}
    targets = sorted({r.new_id for r in rows})
    have: dict[tuple[int, str], Any] = {}
    for i in range(0, len(targets), 500):
        stmt = select(labels.c.id, labels.c.example_id, labels.c.labeller, labels.c.label, labels.c.note, labels.c.created_at).where(
            labels.c.example_id.in_(targets[i : i + 500]), labels.c.kind == "human"
        )
        have.update(((r.example_id, r.labeller), r) for r in conn.execute(stmt))
    newest: dict[tuple[int, str], Any] = {}
    for r in rows:  # oldest first: the reviewer's newest label of that text wins
        newest[(r.new_id, r.labeller)] = r
    created = now()
    out: dict[str, int] = {}
    for (ex, who), r in newest.items():
        own = have.get((ex, who))
        if own is not None and (own.created_at >= r.created_at or own.label == r.label):
            continue  # the present item's label is the newer one, or already this review
        if own is None:
            conn.execute(labels.insert().values(example_id=ex, kind="human", labeller=who, label=r.label, note=r.note, created_at=r.created_at))
        else:
            conn.execute(update(labels).where(labels.c.id == own.id).values(label=r.label, note=r.note, created_at=r.created_at))
        conn.execute(
            label_changes.insert().values(
                example_id=ex, labeller=who, old_label=None if own is None else own.label, new_label=r.label,
                old_note=None if own is None else own.note, created_at=created,
                origin=f"carried from example {r.old_id} (data source {r.old_source} id {r.old_external_id}, no longer in its data file): the same text",
            )
        )  # fmt: skip
        out[r.new_source] = out.get(r.new_source, 0) + 1
    return out


def orphaned_reviews(engine: Engine) -> int:
    """Reviewers' labels of items no longer in their data file that no present item of the same text
    carries: they label nothing that is trained on or tested."""
    with engine.connect() as conn:
        rows = _reviews_of_absent(conn)
    return len({(r.old_id, r.labeller) for r in rows} - {(r.old_id, r.labeller) for r in rows if _carries(r)})


def _load_source_in(conn: Any, src: SourceItems) -> SourceLoad:
    items = src.items
    added = add_examples_in(conn, src.name, items, gold_labeller=src.gold_labeller, path=src.path, row_numbers=src.row_numbers) if items else 0
    present = {it.external_id for it in items}
    rows = conn.execute(select(examples.c.id, examples.c.external_id, examples.c.absent_since).where(examples.c.source == src.name)).all()
    gone = [r.id for r in rows if r.external_id not in present and r.absent_since is None]
    back = [r.id for r in rows if r.external_id in present and r.absent_since is not None]
    stamp = now()
    for ids, value in ((gone, stamp), (back, None)):
        for i in range(0, len(ids), 500):
            conn.execute(update(examples).where(examples.c.id.in_(ids[i : i + 500])).values(absent_since=value))
    absent = sum(r.external_id not in present for r in rows)
    return SourceLoad(added, absent, len(back))


def absent_examples(engine: Engine, *, source: str | None = None, tags: list[str] | None = None) -> list[Example]:
    """The examples ``select_examples`` leaves out: those whose data file no longer holds them."""
    return select_examples(engine, source=source, tags=tags, absent=True)


def _first_difference(old: str, new: str, context: int = 20, width: int = 60) -> tuple[int, str, str]:
    """Where two texts first differ, and each one's excerpt from a little before it."""
    at = next((i for i, (a, b) in enumerate(zip(old, new)) if a != b), min(len(old), len(new)))
    start = max(0, at - context)

    def cut(text: str) -> str:
        piece = text[start : start + width]
        return ("…" if start else "") + piece + ("…" if start + width < len(text) else "")

    return at, cut(old), cut(new)


def add_examples_in(
    conn: Any, source: str, items: Iterable[Item], *, gold_labeller: str | None = None, path: Path | str | None = None, row_numbers: bool = False
) -> int:
    """``add_examples`` inside the caller's transaction (what it adds commits or rolls back with
    whatever else the caller writes there). ``path``: the data file the items came from, named
    (with the item's line) in an error; ``row_numbers``: its ids are row numbers (no id_column),
    which the error's fix names."""
    items = list(items)
    created = now()
    gone = set(conn.execute(select(forgotten_keys.c.value).where(forgotten_keys.c.kind == "text_hash")).scalars())
    if gone:
        items = [it for it in items if text_hash(it.text) not in gone]
    stored = _stored(conn, source, [it.external_id for it in items])
    for it in items:
        old = stored.get(it.external_id)
        if old is not None and old["text"] != it.text:
            if PLACEHOLDER.search(old["text"]) or PLACEHOLDER.search(it.text):
                raise InputDataError(
                    f"id {it.external_id!r} is stored {'redacted' if PLACEHOLDER.search(old['text']) else 'as written'}, now "
                    f"{'redacted' if PLACEHOLDER.search(it.text) else 'as written'}: privacy.redact_teacher_input changed since it was stored; "
                    "set it back, or start a new store for the other setting",
                    path=source,
                )
            at, was, now_ = _first_difference(old["text"], it.text)
            gone = old["absent_since"]
            fix = (
                "this source has no id_column, so its ids are row numbers, and a row deleted or inserted above shifts them: set data[].id_column "
                "in graduate.yaml to a column of ids that stay with their rows (add one if the file has none)"
                if row_numbers
                else "ids must stay with their text, even after their row is deleted: give this row an id not used before (or put the old text back)"
                if gone is not None
                else "ids must stay with their text: give the edited row a new id"
            )
            # An item whose row was deleted stays stored (labels, reviews, calls): the id is not free.
            what = (
                f"was taken out of its data file (absent since {gone:%Y-%m-%d %H:%M}; the stored item keeps its text, labels and teacher calls) "
                "and is back with another text"
                if gone is not None
                else "is stored with another text"
            )
            raise InputDataError(
                f"id {it.external_id!r} of data source {source!r} {what} (from character {at + 1}: {was!r}, now {now_!r}); {fix}",
                path=path or source,
                line=it.line if path else None,
            )
    added = insert_ignore(
        conn,
        examples,
        [
            {
                "source": source,
                "external_id": it.external_id,
                "text": it.text,
                "text_hash": text_hash(it.text),
                "tags": it.tags,
                "group": it.group,
                "created_at": created,
            }
            for it in items
            if it.external_id not in stored
        ],
    )
    for it in items:
        old = stored.get(it.external_id)
        if old is not None and (old["tags"] != it.tags or old["group"] != it.group):
            conn.execute(update(examples).where(examples.c.id == old["id"]).values(tags=it.tags, group=it.group))
    if gold_labeller:
        ids = dict(conn.execute(select(examples.c.external_id, examples.c.id).where(examples.c.source == source)).all())
        golds = dict(
            conn.execute(select(labels.c.example_id, labels.c.label).where(labels.c.kind == "gold", labels.c.labeller == gold_labeller)).all()
        )
        new_rows = []
        for it in items:
            ex = ids.get(it.external_id)
            if ex is None:
                continue
            if ex not in golds:
                if it.gold is not None:
                    new_rows.append({"example_id": ex, "kind": "gold", "labeller": gold_labeller, "label": it.gold, "created_at": created})
            elif golds[ex] != it.gold:
                # The file changed its gold label: the file wins, the old one is kept in the log.
                conn.execute(update(labels).where(labels.c.example_id == ex, labels.c.labeller == gold_labeller).values(label=it.gold, created_at=created))
                conn.execute(
                    label_changes.insert().values(
                        example_id=ex, labeller=gold_labeller, old_label=golds[ex], new_label=it.gold, origin=f"data source {source}: gold changed in the file", created_at=created
                    )
                )
        insert_ignore(conn, labels, new_rows)
    return added


def _stored(conn: Any, source: str, external_ids: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for i in range(0, len(external_ids), 500):
        stmt = select(examples.c.id, examples.c.external_id, examples.c.text, examples.c.tags, examples.c.group, examples.c.absent_since).where(
            examples.c.source == source, examples.c.external_id.in_(external_ids[i : i + 500])
        )
        for row in conn.execute(stmt):
            out[row.external_id] = {"id": row.id, "text": row.text, "tags": list(row.tags or []), "group": row.group, "absent_since": row.absent_since}
    return out


def stored_text_hashes(engine: Engine, hashes: Iterable[str]) -> set[str]:
    """The text hashes among ``hashes`` that some stored example (any source) still in its data
    file has. An item its data file no longer holds is in no build, so its text is not held: a
    made text equal to it is added as a new item (as feedback is: ``examples_for_texts(...,
    reuse_absent=False)``)."""
    wanted = sorted(set(hashes))
    out: set[str] = set()
    with engine.connect() as conn:
        for i in range(0, len(wanted), 500):
            stmt = select(examples.c.text_hash).where(examples.c.text_hash.in_(wanted[i : i + 500]), examples.c.absent_since.is_(None))
            out.update(conn.execute(stmt).scalars())
    return out


def exact_text_id(text: str) -> str:
    """An example id made of the exact text: one id never stands for two texts."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def examples_for_texts(engine: Engine, source: str, texts: Sequence[str], *, reuse_absent: bool = True) -> list[Example]:
    """One stored example per text, in order: an example of any source with exactly this text is
    reused (so labelling the project's own file adds nothing), other texts are added under
    ``source``, keyed by their exact text (so a new file, or an edited one, gets its new texts).
    An item still in its data file is preferred; where only an item no longer in its data file has
    the text, that one comes back with ``absent`` set (the caller decides: label it or not), or,
    with ``reuse_absent=False`` (a person's feedback on a served text), the text is added under
    ``source`` as a new item, which builds and selections see."""
    hashes = {t: text_hash(t) for t in texts}
    found: dict[str, Example] = {}

    def lookup() -> None:
        wanted = sorted(set(hashes.values()))
        with engine.connect() as conn:
            for i in range(0, len(wanted), 500):
                stmt = (
                    select(
                        examples.c.id, examples.c.source, examples.c.external_id, examples.c.text, examples.c.text_hash, examples.c.tags, examples.c.group,
                        examples.c.absent_since.is_not(None),
                    )
                    .where(examples.c.text_hash.in_(wanted[i : i + 500]))
                    .order_by(examples.c.absent_since.is_not(None), examples.c.id)
                )
                for row in conn.execute(stmt):
                    if reuse_absent or not row[-1]:
                        found.setdefault(row.text, Example(*row))

    lookup()
    missing = list(dict.fromkeys(t for t in texts if t not in found))
    if missing:
        add_examples(engine, source, [Item(exact_text_id(t), t) for t in missing])
        lookup()
    return [found[t] for t in texts]


def select_examples(engine: Engine, *, source: str | None = None, tags: list[str] | None = None, absent: bool = False) -> list[Example]:
    """Examples of a source whose tags match any of the patterns (shell-style, e.g. ``train*``);
    items their data file no longer holds are left out (``absent=True``: only those)."""
    stmt = select(
        examples.c.id, examples.c.source, examples.c.external_id, examples.c.text, examples.c.text_hash, examples.c.tags, examples.c.group
    ).order_by(examples.c.id)
    stmt = stmt.where(examples.c.absent_since.is_not(None) if absent else examples.c.absent_since.is_(None))
    if source is not None:
        stmt = stmt.where(examples.c.source == source)
    with engine.connect() as conn:
        rows = [Example(*r, absent=absent) for r in conn.execute(stmt)]
    if not tags or tags == ["*"]:
        return rows
    return [r for r in rows if any(fnmatchcase(t, pat) for t in r.tags for pat in tags)]


def selection_examples(engine: Engine, selection: Any) -> list[Example]:
    """The examples of a selection (source, tags and, when given, a ``share`` chosen by a hash of
    each text and the selection's name: the same items every time, whatever else is added)."""
    pool = select_examples(engine, source=selection.source, tags=selection.tags)
    share = getattr(selection, "share", None)
    if share is None:
        return pool
    salt = selection.name.encode()
    return [ex for ex in pool if int(hashlib.sha256(salt + b"\0" + ex.text_hash.encode()).hexdigest()[:12], 16) < share * 16**12]


def labels_for(engine: Engine, example_ids: Iterable[int], *, kind: str, labeller: str | None = None) -> dict[int, str | None]:
    """One label per example of the given kind (and labeller); human labels of later ids win."""
    ids = list(example_ids)
    out: dict[int, str | None] = {}
    with engine.connect() as conn:
        for i in range(0, len(ids), 500):
            stmt = select(labels.c.example_id, labels.c.label).where(
                labels.c.example_id.in_(ids[i : i + 500]), labels.c.kind == kind
            )
            if labeller is not None:
                stmt = stmt.where(labels.c.labeller == labeller)
            for ex, lab in conn.execute(stmt.order_by(labels.c.id)):
                out[ex] = lab
    return out
