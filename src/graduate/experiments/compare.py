"""Find runs by id prefix, flatten their config and metrics, and line two runs up side by side."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from graduate.errors import NotReadyError
from graduate.store.runs import RunRow, get_runs


def find_run(engine: Engine, ref: str, *, root: Path | None = None, notes: list[str] | None = None) -> RunRow:
    """A run by id, id prefix (at least 4 characters) or exact name (the newest with that name;
    when several runs have it, a line saying so is added to ``notes``)."""
    rows = get_runs(engine, root=root)
    exact = [r for r in rows if r.id == ref]
    if exact:
        return exact[0]
    by_prefix = [r for r in rows if len(ref) >= 4 and r.id.startswith(ref)]
    if len(by_prefix) == 1:
        return by_prefix[0]
    if len(by_prefix) > 1:
        raise NotReadyError(f"run id prefix {ref!r} matches {len(by_prefix)} runs; give more characters (see `graduate runs list`)")
    by_name = [r for r in rows if r.name == ref]
    if by_name:
        if len(by_name) > 1 and notes is not None:
            older = ", ".join(r.id[:8] for r in by_name[-2::-1][:5])
            notes.append(f"{ref!r} is the newest of {len(by_name)} runs with that name ({by_name[-1].id[:8]}); older: {older}{', ...' if len(by_name) > 6 else ''} (give an id prefix)")
        return by_name[-1]
    raise NotReadyError(f"no run {ref!r} (by id, id prefix or name); list them with `graduate runs list PROJECT`")


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys; lists of scalars stay as values."""
    out: dict[str, Any] = {}
    if isinstance(value, dict):
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        for i, v in enumerate(value):
            out.update(flatten(v, f"{prefix}[{i}]"))
    else:
        out[prefix] = value
    return out


def run_config(run: RunRow) -> dict[str, Any]:
    """What the run was asked to do: student kind and params, seed, data and code versions, the spec."""
    info: dict[str, Any] = {}
    if run.artifact_dir:
        path = Path(run.artifact_dir).parent / "run.json"
        if path.exists():
            saved = json.loads(path.read_text())
            info["student"] = saved.get("student")
            info["params"] = saved.get("params")
            info["soft_labels"] = saved.get("soft_labels")
            info["dataset"] = {k: v for k, v in (saved.get("dataset") or {}).items() if k != "recipe"}
    metrics = run.metrics or {}
    if "params" in metrics and "params" not in info:
        info["params"] = metrics["params"]
    return {
        "kind": run.kind,
        "name": run.name,
        "seed": run.seed,
        "dataset_hash": run.dataset_hash,
        "code_version": run.code_version,
        **info,
        "spec": run.spec,
    }


def run_metrics(run: RunRow) -> dict[str, Any]:
    return {k: v for k, v in flatten(run.metrics or {}).items() if not k.startswith("params.") and k != "kind"}


@dataclass
class Difference:
    section: str  # config | metrics
    key: str
    a: Any
    b: Any


def compare_runs(a: RunRow, b: RunRow, *, include_same: bool = False) -> list[Difference]:
    """Config and metric keys whose values differ between two runs (all keys with include_same)."""
    out: list[Difference] = []
    for section, fa, fb in (("config", flatten(run_config(a)), flatten(run_config(b))), ("metrics", run_metrics(a), run_metrics(b))):
        for key in sorted(set(fa) | set(fb)):
            va, vb = fa.get(key), fb.get(key)
            if include_same or va != vb:
                out.append(Difference(section, key, va, vb))
    return out
