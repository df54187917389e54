"""Experiment runs and their predictions."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import uuid
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy import Engine, select, update

from graduate.store.db import insert_ignore, now, safe_url
from graduate.store.schema import predictions, runs


@lru_cache(maxsize=1)
def code_version() -> str:
    """The package version, plus the git commit (and '-dirty') when run from a checkout."""
    # The installed distribution's version: importing the package root would load the whole facade.
    from importlib.metadata import PackageNotFoundError, version

    try:
        __version__ = version("graduate")
    except PackageNotFoundError:
        __version__ = "0.0.0"

    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", str(here.parent)],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    if not commit:
        return __version__
    return f"{__version__}+g{commit}{'-dirty' if dirty else ''}"


def fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class RunRow:
    id: str
    kind: str
    name: str
    status: str
    fingerprint: str | None
    spec: dict[str, Any]
    dataset_hash: str | None
    code_version: str
    seed: int
    metrics: dict[str, Any] | None
    artifact_dir: str | None
    error: str | None
    started_at: Any
    finished_at: Any
    owner: str | None = None


def stored_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The resolved spec as a run keeps it (in the store and in run.json beside the artifacts, which
    travel): store.url without its password."""
    store = spec.get("store") or {}
    if not store.get("url"):
        return spec
    return {**spec, "store": {**store, "url": safe_url(store["url"])}}


def start_run(
    engine: Engine,
    *,
    kind: str,
    name: str,
    spec: dict[str, Any],
    seed: int,
    dataset_hash: str | None = None,
    fingerprint: str | None = None,
    artifact_dir: str | None = None,
) -> str:
    run_id = uuid.uuid4().hex
    mark_interrupted(engine)
    with engine.begin() as conn:
        conn.execute(
            runs.insert().values(
                id=run_id,
                kind=kind,
                name=name,
                status="running",
                fingerprint=fingerprint,
                spec=stored_spec(spec),
                dataset_hash=dataset_hash,
                code_version=code_version(),
                seed=seed,
                artifact_dir=artifact_dir,
                started_at=now(),
                owner=_me(),
            )
        )
    return run_id


def _me() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def process_gone(pid: int) -> bool:
    """Whether process ``pid`` on this machine has ended (what a row a killed process left behind
    is judged by: runs, proxy calls, the local teacher's settings files)."""
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except (PermissionError, OSError):
        return False  # it exists (another user's), or we cannot tell: not ours to mark
    return False


def mark_interrupted(engine: Engine) -> list[str]:
    """Mark failed the runs still "running" whose process on this host is gone (killed, e.g.
    ``kill -9``, or the machine restarted); returns their ids. Runs of other hosts, and runs whose
    process still exists, are left as they are: never marks a live run."""
    host = socket.gethostname()
    with engine.connect() as conn:
        running = conn.execute(select(runs.c.id, runs.c.owner).where(runs.c.status == "running", runs.c.owner.is_not(None))).all()
    gone = []
    for run_id, owner in running:
        on, _, pid = owner.rpartition(":")
        if on != host:
            continue
        if pid.isdigit() and int(pid) != os.getpid() and process_gone(int(pid)):
            gone.append((run_id, owner))
    if gone:
        with engine.begin() as conn:
            for run_id, owner in gone:
                conn.execute(
                    update(runs)
                    .where(runs.c.id == run_id, runs.c.status == "running")
                    .values(status="failed", error=f"interrupted: its process ({owner}) ended before the run finished", finished_at=now())
                )
    return [r for r, _ in gone]


def finish_run(engine: Engine, run_id: str, *, metrics: dict[str, Any], artifact_dir: str | None = None) -> None:
    values: dict[str, Any] = {"status": "finished", "metrics": json.loads(json.dumps(metrics)), "finished_at": now()}
    if artifact_dir is not None:
        values["artifact_dir"] = artifact_dir
    with engine.begin() as conn:
        conn.execute(update(runs).where(runs.c.id == run_id).values(**values))


def update_metrics(engine: Engine, run_id: str, metrics: dict[str, Any]) -> None:
    with engine.begin() as conn:
        conn.execute(update(runs).where(runs.c.id == run_id).values(metrics=json.loads(json.dumps(metrics))))


def fail_run(engine: Engine, run_id: str, error: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(runs).where(runs.c.id == run_id).values(status="failed", error=error, finished_at=now()))


def relative_artifact_dir(directory: Path, root: Path) -> str:
    """How a run's artifact folder is stored: relative to the project folder when inside it, so a
    project moved or copied elsewhere still finds its students (absolute otherwise)."""
    directory, root = Path(directory).resolve(), Path(root).resolve()
    try:
        return directory.relative_to(root).as_posix()
    except ValueError:
        return str(directory)


def get_runs(
    engine: Engine, *, kind: str | None = None, status: str | None = None, fingerprint: str | None = None, root: Path | None = None
) -> list[RunRow]:
    """Runs in start order; with ``root`` (the project folder) relative artifact folders come back
    absolute, resolved against it."""
    stmt = select(*runs.c).order_by(runs.c.started_at)
    if kind is not None:
        stmt = stmt.where(runs.c.kind == kind)
    if status is not None:
        stmt = stmt.where(runs.c.status == status)
    if fingerprint is not None:
        stmt = stmt.where(runs.c.fingerprint == fingerprint)
    with engine.connect() as conn:
        rows = [RunRow(**row._mapping) for row in conn.execute(stmt)]
    if root is not None:
        for r in rows:
            if r.artifact_dir and not Path(r.artifact_dir).is_absolute():
                r.artifact_dir = str(Path(root) / r.artifact_dir)
    return rows


def save_predictions(engine: Engine, run_id: str, rows: Iterable[dict[str, Any]]) -> int:
    rows = [{"run_id": run_id, **r} for r in rows]
    with engine.begin() as conn:
        return insert_ignore(conn, predictions, rows)
