"""Frozen test sets: the examples a selection names, with gold labels and a content hash."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import Engine

from graduate.data.examples import Example, labels_for, select_examples
from graduate.errors import NotReadyError
from graduate.spec import SelectionSpec


@dataclass
class TestSet:
    __test__ = False  # not a pytest class

    name: str
    examples: list[Example]
    gold: list[str]
    content_hash: str
    without_gold: int


def load_test_set(engine: Engine, selection: SelectionSpec) -> TestSet:
    """Examples of the selection that have a gold label; the hash covers ids, texts and gold."""
    pool = select_examples(engine, source=selection.source, tags=selection.tags)
    gold = labels_for(engine, [ex.id for ex in pool], kind="gold")
    kept = [ex for ex in pool if gold.get(ex.id) is not None]
    if not kept:
        raise NotReadyError(
            f"test set {selection.name!r} has no examples with gold labels (tags {selection.tags}); "
            "check data: gold_column and the tags in graduate.yaml"
        )
    labels = [gold[ex.id] for ex in kept]
    h = hashlib.sha256()
    for ex, lab in zip(kept, labels):
        h.update(f"{ex.source}\t{ex.external_id}\t{ex.text_hash}\t{lab}\n".encode())
    return TestSet(selection.name, kept, labels, h.hexdigest(), len(pool) - len(kept))  # type: ignore[arg-type]
