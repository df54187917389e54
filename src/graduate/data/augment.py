"""Augmented training items (practices 5, 6, 8): counterfactual term swaps that keep the label.

An item of the training pool that names a term of a list (``augment.term_lists``, e.g. identity
terms) gets copies with another term of the same list in its place, matched as a whole word, any
case, the case of the original kept (``Gay`` -> ``Muslim``). Each copy is stored as an example of
source ``augment`` with its lineage (method, parent example, the swap, the parent's labeller) and
the parent's label (kind ``derived``); the build adds them to the pool (``augment.include``), where
a reviewer's label still wins. Copies whose text is already stored are skipped, so running it again
adds nothing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Sequence

from sqlalchemy import Engine, select

from graduate.data.csv_source import Item
from graduate.data.examples import Example, add_examples_in, exact_text_id, select_examples, stored_text_hashes
from graduate.data.text import text_hash
from graduate.errors import SpecError
from graduate.formats import labelset
from graduate.spec.terms import same_term, swaps, term_pattern
from graduate.store.db import insert_ignore, now
from graduate.store.schema import examples as examples_table
from graduate.store.schema import labels as labels_table

SOURCE = "augment"
DERIVED = "derived"


@dataclass
class AugmentReport:
    method: str
    considered: int = 0  # pool items with a label
    matching: int = 0  # of those, items naming a term
    added: int = 0
    already_stored: int = 0
    per_term: dict[str, int] = field(default_factory=dict)  # copies added, by the term put in


def term_list(spec: Any, name: str) -> list[str]:
    terms = spec.augment.term_lists.get(name)
    if terms is None and name == "identity":
        terms = spec.evaluation.identity_terms
    if not terms or len(terms) < 2:
        raise SpecError(
            f"no term list {name!r} to swap within: add augment.term_lists.{name} (two or more terms)"
            + (" or evaluation.identity_terms" if name == "identity" else ""),
            field=f"augment.term_lists.{name}",
        )
    return list(terms)


def counterfactual(
    engine: Engine, spec: Any, labelled: dict[int, tuple[str, str]], pool: Sequence[Example], *, target: str | None = None
) -> AugmentReport:
    """Add the counterfactual copies of the labelled pool items (``labelled``: example id ->
    (label, labeller)) and their derived labels. With ``target`` (a term of the list: a weak
    slice), only copies that put that term in: targeted additions for its slice."""
    cfg = spec.augment.counterfactual
    terms = term_list(spec, cfg.terms)
    if target is not None and not any(same_term(t, target) for t in terms):
        raise SpecError(
            f"--target {target!r} is not in term list {cfg.terms!r} ({', '.join(terms[:12])}{', ...' if len(terms) > 12 else ''}); "
            f"add it to augment.term_lists.{cfg.terms} or pick one of those",
            field=f"augment.term_lists.{cfg.terms}",
        )
    report = AugmentReport("counterfactual")
    pattern = term_pattern(terms)
    wanted = cfg.labels_swapped()
    made: list[tuple[str, Example, str, str, str, str]] = []
    for ex in pool:
        if ex.id not in labelled:
            continue
        label, labeller = labelled[ex.id]
        n = _copies(spec, label)
        if n == 0:
            continue
        report.considered += 1
        # A generator of its own per item (seeded by its text): one drawn in pool order gave the
        # items after a row that left the data file other terms, and so a second copy each.
        copies = swaps(ex.text, terms, n, random.Random(f"{spec.seed}:{text_hash(ex.text)}"), target, pattern=pattern)
        report.matching += bool(copies)
        made += [(text, ex, label, labeller, old, new) for text, old, new in copies]
    if report.matching == 0:
        raise SpecError(
            f"no labelled training item{' with labels ' + str(sorted(wanted)) if wanted else ''} names a term of list {cfg.terms!r}"
            f"{' other than ' + repr(target) if target else ''}: nothing to swap; widen augment.counterfactual.labels or the term list",
            field=f"augment.term_lists.{cfg.terms}",
        )
    stored = store_made(
        engine,
        [
            Made(text, {"method": "counterfactual", "parent": parent.id, "parent_source": parent.source, "parent_id": parent.external_id, "swap": [old, new], "label_from": labeller},
                 label, f"augment:counterfactual<{labeller}", f"{old} -> {new}", new, ["augment", "counterfactual"])
            for text, parent, label, labeller, old, new in made
        ],
    )
    report.added, report.already_stored, report.per_term = stored.added, stored.already_stored, stored.per_key
    return report


def _copies(spec: Any, label: str) -> int:
    """How many copies an item with this label gets at most. A label set (multi-label) is chosen
    by any label it holds, and gets the most copies any of them is given ({care, equality} under
    labels [care] is an item of care); the empty set by ``(none)`` (labels: ["(none)"])."""
    cfg = spec.augment.counterfactual
    try:
        chosen = labelset.decode(label, spec.task.labels) if spec.task.multi_label else None
    except ValueError:  # not a set of task labels: compared whole, as a single label is
        chosen = None
    if not chosen:
        return cfg.copies_for(label)
    return max(cfg.copies_for(part) for part in chosen)


@dataclass
class Made:
    """One item graduate made: its text, lineage, label and who that label is from."""

    text: str
    lineage: dict[str, Any]
    label: str
    labeller: str  # e.g. augment:counterfactual<teacher:gpt-4/simple@1a2b3c4d
    note: str
    key: str  # what the report counts it under (the term put in, the slice, the method)
    tags: list[str]


@dataclass
class Stored:
    added: int = 0
    already_stored: int = 0
    per_key: dict[str, int] = field(default_factory=dict)


def store_made(engine: Engine, made: Sequence[Made]) -> Stored:
    """Store made items (source ``augment``) with their lineage and derived label; a text the
    store already holds, or one made twice, is added once."""
    out = Stored()
    if not made:
        return out
    stored = stored_text_hashes(engine, (text_hash(m.text) for m in made))
    fresh: dict[str, Made] = {}
    for m in made:
        h = text_hash(m.text)
        if h in stored or h in fresh:
            out.already_stored += 1
            continue
        fresh[h] = m
    if not fresh:
        return out
    created = now()
    # One transaction: an item is never stored without its lineage and label (a kill -9 between
    # the two would leave copies a rerun skips as already stored, unlabelled for good).
    with engine.begin() as conn:
        add_examples_in(conn, SOURCE, [Item(external_id=exact_text_id(m.text), text=m.text, tags=list(m.tags)) for m in fresh.values()])
        ids = dict(
            conn.execute(select(examples_table.c.text_hash, examples_table.c.id).where(examples_table.c.source == SOURCE, examples_table.c.text_hash.in_(list(fresh)))).all()
        )
        rows = []
        for h, m in fresh.items():
            ex_id = ids.get(h)
            if ex_id is None:
                continue
            conn.execute(examples_table.update().where(examples_table.c.id == ex_id).values(lineage=m.lineage))
            rows.append({"example_id": ex_id, "kind": DERIVED, "labeller": m.labeller, "label": m.label, "note": m.note, "created_at": created})
            out.per_key[m.key] = out.per_key.get(m.key, 0) + 1
        out.added = insert_ignore(conn, labels_table, rows)
    return out


def derived_labels(engine: Engine, example_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """Per augmented example: (label, labeller) it inherited from its parent."""
    out: dict[int, tuple[str, str]] = {}
    ids = list(example_ids)
    with engine.connect() as conn:
        for i in range(0, len(ids), 500):
            for ex, lab, who in conn.execute(
                select(labels_table.c.example_id, labels_table.c.label, labels_table.c.labeller).where(
                    labels_table.c.example_id.in_(ids[i : i + 500]), labels_table.c.kind == DERIVED, labels_table.c.label.is_not(None)
                )
            ):
                out[ex] = (lab, who)
    return out


def counterfactual_parents(engine: Engine, example_ids: Sequence[int]) -> dict[int, int]:
    """Per counterfactual copy among ``example_ids``: the id of the item it was made from."""
    ids = list(example_ids)
    out: dict[int, int] = {}
    with engine.connect() as conn:
        for i in range(0, len(ids), 500):
            for ex, lineage in conn.execute(select(examples_table.c.id, examples_table.c.lineage).where(examples_table.c.id.in_(ids[i : i + 500]))):
                if isinstance(lineage, dict) and lineage.get("method") == "counterfactual" and isinstance(lineage.get("parent"), int):
                    out[ex] = lineage["parent"]
    return out


def made_texts(engine: Engine, *, except_calls: set[int]) -> list[str]:
    """The texts of the items graduate made, but those written by the generation calls ``except_calls``."""
    with engine.connect() as conn:
        rows = conn.execute(select(examples_table.c.text, examples_table.c.lineage).where(examples_table.c.source == SOURCE)).all()
    return [t for t, lineage in rows if not (isinstance(lineage, dict) and lineage.get("generation_call") in except_calls)]


def augmented_pool(engine: Engine) -> list[Example]:
    return select_examples(engine, source=SOURCE)


def made_from_absent(engine: Engine, example_ids: Sequence[int]) -> set[int]:
    """The items among ``example_ids`` made from one parent (a counterfactual copy, a paraphrase)
    whose data file no longer holds that parent: they leave the pool with it."""
    ids = list(example_ids)
    parent_of: dict[int, int] = {}
    with engine.connect() as conn:
        for i in range(0, len(ids), 500):
            for ex, lineage in conn.execute(select(examples_table.c.id, examples_table.c.lineage).where(examples_table.c.id.in_(ids[i : i + 500]))):
                if isinstance(lineage, dict) and isinstance(lineage.get("parent"), int):
                    parent_of[ex] = lineage["parent"]
        parents = sorted(set(parent_of.values()))
        absent: set[int] = set()
        for i in range(0, len(parents), 500):
            absent.update(
                conn.execute(select(examples_table.c.id).where(examples_table.c.id.in_(parents[i : i + 500]), examples_table.c.absent_since.is_not(None))).scalars()
            )
    return {ex for ex, parent in parent_of.items() if parent in absent}
