"""Build the training set from teacher labels, recording what each step dropped and why."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select

from graduate.data.examples import Example, select_examples
from graduate.data.teacher_labels import teacher_labels
from graduate.spec import ProjectSpec
from graduate.store.db import insert_ignore, now
from graduate.store.schema import dataset_items, datasets


@dataclass
class Dataset:
    name: str
    examples: list[Example]
    labels: list[str]
    recipe: dict[str, Any]
    content_hash: str
    id: int | None = None
    weights: list[float] = field(default_factory=list)

    @property
    def texts(self) -> list[str]:
        return [e.text for e in self.examples]

    @property
    def label_counts(self) -> dict[str, int]:
        return dict(Counter(self.labels))


def dataset_hash(examples: list[Example], labels: list[str]) -> str:
    h = hashlib.sha256()
    for ex, lab in sorted(zip(examples, labels), key=lambda p: (p[0].text_hash, p[1])):
        h.update(f"{ex.text_hash}\t{lab}\n".encode())
    return h.hexdigest()


def build_training_set(engine: Engine, spec: ProjectSpec, *, name: str = "train") -> Dataset:
    """Training pool -> teacher labels -> drop unanswered, unparseable, test overlap, duplicates."""
    pool = select_examples(engine, source=spec.train.source, tags=spec.train.tags)
    steps: list[dict[str, Any]] = [{"step": "pool", "tags": spec.train.tags, "source": spec.train.source, "kept": len(pool)}]
    answers = teacher_labels(engine, spec.task, spec.teacher, pool)

    unanswered = [ex for ex in pool if answers[ex.id].call is None]
    unparsed = [ex for ex in pool if answers[ex.id].call is not None and answers[ex.id].label is None]
    kept = [ex for ex in pool if answers[ex.id].label is not None]
    steps.append({"step": "teacher_answer", "labeller": spec.teacher.labeller, "dropped": len(unanswered), "reason": "no stored teacher answer", "kept": len(pool) - len(unanswered)})
    steps.append({"step": "parse", "dropped": len(unparsed), "reason": "teacher answer did not parse to a label", "examples": [ex.external_id for ex in unparsed[:20]], "kept": len(kept)})

    if spec.train.exclude_test_overlap and spec.test_sets:
        test_hashes = {
            ex.text_hash
            for ts in spec.test_sets
            for ex in select_examples(engine, source=ts.source, tags=ts.tags)
        }
        overlap = [ex for ex in kept if ex.text_hash in test_hashes]
        kept = [ex for ex in kept if ex.text_hash not in test_hashes]
        steps.append({"step": "test_overlap", "dropped": len(overlap), "reason": "same normalised text as a test item", "kept": len(kept)})

    seen: set[str] = set()
    unique: list[Example] = []
    for ex in kept:
        if ex.text_hash not in seen:
            seen.add(ex.text_hash)
            unique.append(ex)
    steps.append({"step": "exact_duplicates", "dropped": len(kept) - len(unique), "reason": "same normalised text as an earlier item", "kept": len(unique)})

    labels = [answers[ex.id].label for ex in unique]
    assert all(lab is not None for lab in labels)
    dataset = Dataset(name, unique, labels, {"steps": steps}, dataset_hash(unique, labels), weights=[1.0] * len(unique))  # type: ignore[arg-type]
    dataset.recipe["label_counts"] = dataset.label_counts
    dataset.id = save_dataset(engine, dataset)
    return dataset


def save_dataset(engine: Engine, dataset: Dataset) -> int:
    """Store a dataset version once (name + content hash); its items and recipe go with it."""
    with engine.begin() as conn:
        existing = conn.execute(
            select(datasets.c.id).where(datasets.c.name == dataset.name, datasets.c.content_hash == dataset.content_hash)
        ).scalar()
        if existing is not None:
            return int(existing)
        ds_id = conn.execute(
            datasets.insert().values(
                name=dataset.name,
                content_hash=dataset.content_hash,
                recipe=json.loads(json.dumps(dataset.recipe)),
                size=len(dataset.examples),
                created_at=now(),
            )
        ).inserted_primary_key[0]
        insert_ignore(
            conn,
            dataset_items,
            [
                {"dataset_id": ds_id, "example_id": ex.id, "label": lab, "weight": w}
                for ex, lab, w in zip(dataset.examples, dataset.labels, dataset.weights)
            ],
        )
    return int(ds_id)
