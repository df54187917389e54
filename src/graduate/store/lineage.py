"""What the data loop added and what it changed: items graduate made, by method and target, and
each student's figures on each test set for its last two trainings (before and after)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from graduate.store.schema import eval_results, examples, labels


def parents(engine: Engine, example_ids: list[int]) -> dict[int, int]:
    """Per item graduate made from another (its lineage names a parent): the parent's example id."""
    out: dict[int, int] = {}
    with engine.connect() as conn:
        for i in range(0, len(example_ids), 500):
            for ex_id, lineage in conn.execute(select(examples.c.id, examples.c.lineage).where(examples.c.id.in_(example_ids[i : i + 500]), examples.c.lineage.is_not(None))):
                parent = (lineage or {}).get("parent")
                if isinstance(parent, int) and not isinstance(parent, bool):
                    out[int(ex_id)] = parent
    return out


def made_items(engine: Engine) -> list[dict[str, Any]]:
    """Items graduate made (source augment), per method and what they were for, with their labels."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(examples.c.lineage, labels.c.label)
            .select_from(examples.outerjoin(labels, (labels.c.example_id == examples.c.id) & (labels.c.kind == "derived")))
            .where(examples.c.source == "augment")
        ).all()
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for lineage, label in rows:
        lineage = lineage or {}
        method = str(lineage.get("method") or "unknown")
        swap = lineage.get("swap") or []
        target = lineage.get("target") or (f"{swap[1]} put in" if len(swap) == 2 else "") or "the pool"
        g = groups.setdefault((method, str(target)), {"method": method, "target": str(target), "count": 0, "labels": {}})
        g["count"] += 1
        if label is not None:
            g["labels"][label] = g["labels"].get(label, 0) + 1
    return sorted(groups.values(), key=lambda g: (g["method"], -g["count"]))


def before_after(engine: Engine, metric: str = "accuracy") -> list[dict[str, Any]]:
    """Per student and test set: ``metric`` for the student's previous and latest training run."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(eval_results.c.predictor, eval_results.c.test_set, eval_results.c.metrics, eval_results.c.created_at)
            .where(eval_results.c.predictor.like("student:%"))
            .order_by(eval_results.c.created_at)
        ).all()
    history: dict[tuple[str, str], dict[str, float]] = {}
    for predictor, test_set, metrics, _ in rows:
        _, _, rest = predictor.partition(":")
        name, _, train_run = rest.rpartition(":")
        value = (metrics or {}).get(metric)
        if value is None or not name:
            continue
        history.setdefault((name, test_set), {})[train_run] = float(value)  # insertion order: oldest run first; a re-evaluation updates it
    out = []
    for (name, test_set), by_run in history.items():
        if len(by_run) < 2:
            continue
        (_, before), (_, after) = list(by_run.items())[-2:]
        out.append({"student": name, "test_set": test_set, "metric": metric, "before": before, "after": after, "change": after - before})
    return sorted(out, key=lambda r: (r["student"], r["test_set"]))
