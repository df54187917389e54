"""The validation split that picks the best student (``model_selection``): a share of the training
set's own items held out from every student and scored against their training labels, so that the
test sets only report.

An item is held out when a hash of its key and the seed falls under the share: the split is the
same on every rerun and stable as data is added. The key is the item's group when it has one (a
thread stays whole) and its text otherwise. Items graduate made (source ``augment``: counterfactual
copies, paraphrases, synthetic items) are never scored; one made from a held-out item is held out
with it (a term-swapped copy of a validation item would otherwise teach its answer).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from graduate.data.augment import SOURCE as MADE_SOURCE
from graduate.data.build import Dataset
from graduate.data.examples import Example
from graduate.spec import ProjectSpec
from graduate.store.lineage import parents


@dataclass
class Split:
    """What the students train on, what picks among them (None: nothing held out), and why."""

    train: Dataset
    validation: Dataset | None
    report: dict[str, Any]


def needs_validation(spec: ProjectSpec) -> bool:
    """A pick is needed: two or more students and none named in ``model_selection.student``."""
    return len(spec.students) > 1 and spec.model_selection.student is None


def unit_hash(key: str, seed: int) -> float:
    """A number in [0, 1) from the key and the seed (the same on every machine and run)."""
    digest = hashlib.sha256(f"{seed}\x00{key}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _key(ex: Example) -> str:
    return f"group:{ex.group}" if ex.group else f"text:{ex.text_hash}"


def carve_validation(engine: Engine, spec: ProjectSpec, dataset: Dataset, *, compare: bool = False) -> Split:
    """Hold out ``model_selection.validation_share`` of the dataset's own items (clamped to
    ``min_items``..``max_items``) when students must be compared (``compare``: the caller compares
    students the spec does not list, e.g. the ladder's rungs); else train on everything."""
    sel = spec.model_selection
    own = [i for i, ex in enumerate(dataset.examples) if ex.source != MADE_SOURCE]
    report: dict[str, Any] = {"share": sel.validation_share, "min_items": sel.min_items, "max_items": sel.max_items, "seed": spec.seed}
    if not compare and not needs_validation(spec):
        why = f"model_selection.student names {sel.student!r}" if sel.student else "one student: nothing to pick"
        return Split(dataset, None, {**report, "held_out": 0, "reason": why})
    if len(own) < 4 * sel.min_items:
        why = (
            f"the training set has {len(own)} items of its own, under 4 x model_selection.min_items ({sel.min_items}): nothing held out, "
            f"the last listed student ({spec.students[-1].label!r}) is used; name one in model_selection.student or label more items"
        )
        return Split(dataset, None, {**report, "held_out": 0, "reason": why})
    share = min(sel.validation_share, sel.max_items / len(own))
    share = max(share, sel.min_items / len(own))
    keys = [_key(ex) for ex in dataset.examples]
    held_keys = {keys[i] for i in own if unit_hash(keys[i], spec.seed) < share}
    made = [i for i, ex in enumerate(dataset.examples) if ex.source == MADE_SOURCE]
    parent_of = parents(engine, [dataset.examples[i].id for i in made]) if made else {}
    key_of_id = {ex.id: k for ex, k in zip(dataset.examples, keys)}
    val_idx = [i for i in own if keys[i] in held_keys]
    dropped = [i for i in made if key_of_id.get(parent_of.get(dataset.examples[i].id, -1)) in held_keys]
    out = set(val_idx) | set(dropped)
    train_idx = [i for i in range(len(dataset.examples)) if i not in out]
    if not val_idx or len(val_idx) == len(own):
        why = f"the items' groups put {'none' if not val_idx else 'all'} of them in the validation split: nothing held out; name a student in model_selection.student"
        return Split(dataset, None, {**report, "held_out": 0, "reason": why})
    step = {
        "step": "validation_split",
        "reason": "held out to pick the best student (model_selection); made items of held-out items go with them",
        "share": round(share, 6),
        "held_out": len(val_idx),
        "made_items_held_out": len(dropped),
        "kept": len(train_idx),
    }
    train = dataset.take(train_idx, name=dataset.name, step=step)
    validation = dataset.take(val_idx, name=f"{dataset.name}.validation", step={**step, "kept": len(val_idx)})
    report.update(held_out=len(val_idx), made_items_held_out=len(dropped), trained_on=len(train_idx), effective_share=round(share, 6),
                  label_counts=validation.label_counts, reason="validation split")
    return Split(train, validation, report)
