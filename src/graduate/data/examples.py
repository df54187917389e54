"""Store items as examples (with their gold labels) and select them by source and tags."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Iterable, Sequence

from sqlalchemy import Engine, select

from graduate.data.csv_source import Item
from graduate.data.text import text_hash
from graduate.store.db import insert_ignore, now
from graduate.store.schema import examples, labels


@dataclass
class Example:
    id: int
    source: str
    external_id: str
    text: str
    text_hash: str
    tags: list[str]
    group: str | None = None


def add_examples(engine: Engine, source: str, items: Iterable[Item], *, gold_labeller: str | None = None) -> int:
    """Insert items not yet stored (keyed by source and id); gold labels go in as kind=gold.

    Returns how many examples were added. Existing examples are left as they are.
    """
    items = list(items)
    created = now()
    with engine.begin() as conn:
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
            ],
        )
        if gold_labeller and any(it.gold is not None for it in items):
            ids = dict(
                conn.execute(
                    select(examples.c.external_id, examples.c.id).where(examples.c.source == source)
                ).all()
            )
            insert_ignore(
                conn,
                labels,
                [
                    {
                        "example_id": ids[it.external_id],
                        "kind": "gold",
                        "labeller": gold_labeller,
                        "label": it.gold,
                        "created_at": created,
                    }
                    for it in items
                    if it.gold is not None and it.external_id in ids
                ],
            )
    return added


def exact_text_id(text: str) -> str:
    """An example id made of the exact text: one id never stands for two texts."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def examples_for_texts(engine: Engine, source: str, texts: Sequence[str]) -> list[Example]:
    """One stored example per text, in order: an example of any source with exactly this text is
    reused (so labelling the project's own file adds nothing), other texts are added under
    ``source``, keyed by their exact text (so a new file, or an edited one, gets its new texts)."""
    hashes = {t: text_hash(t) for t in texts}
    found: dict[str, Example] = {}

    def lookup() -> None:
        wanted = sorted(set(hashes.values()))
        with engine.connect() as conn:
            for i in range(0, len(wanted), 500):
                stmt = (
                    select(examples.c.id, examples.c.source, examples.c.external_id, examples.c.text, examples.c.text_hash, examples.c.tags, examples.c.group)
                    .where(examples.c.text_hash.in_(wanted[i : i + 500]))
                    .order_by(examples.c.id)
                )
                for row in conn.execute(stmt):
                    found.setdefault(row.text, Example(*row))

    lookup()
    missing = list(dict.fromkeys(t for t in texts if t not in found))
    if missing:
        add_examples(engine, source, [Item(exact_text_id(t), t) for t in missing])
        lookup()
    return [found[t] for t in texts]


def select_examples(engine: Engine, *, source: str | None = None, tags: list[str] | None = None) -> list[Example]:
    """Examples of a source whose tags match any of the patterns (shell-style, e.g. ``train*``)."""
    stmt = select(
        examples.c.id, examples.c.source, examples.c.external_id, examples.c.text, examples.c.text_hash, examples.c.tags, examples.c.group
    ).order_by(examples.c.id)
    if source is not None:
        stmt = stmt.where(examples.c.source == source)
    with engine.connect() as conn:
        rows = [Example(*r) for r in conn.execute(stmt)]
    if not tags or tags == ["*"]:
        return rows
    return [r for r in rows if any(fnmatchcase(t, pat) for t in r.tags for pat in tags)]


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
