"""`kill -9` of `graduate run` at any moment (importing, building and splitting the training set,
training, scoring): the rerun ends where an uninterrupted run ends (the same validation split,
scores and best student), the store holds every call, item, dataset and finished run once, and
the runs the kills cut short are marked interrupted, not left "running"."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import yaml
from sqlalchemy import func, select

from graduate.pipeline.project import Project
from graduate.store.schema import dataset_items, datasets, examples, runs, teacher_calls
from teacher.live_teacher import cli_env


def command(project: Path) -> list[str]:
    return [sys.executable, "-m", "graduate", "run", str(project)]


def _split(project: Path) -> None:
    path = project / "graduate.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["model_selection"] = {"validation_share": 0.3, "min_items": 10}
    raw["gates"] = []
    path.write_text(yaml.safe_dump(raw, sort_keys=False))


def store(project: Path) -> dict:
    """What the store holds, in counts that a duplicate or a loss would change."""
    proj = Project.load(project)
    with proj.engine.connect() as conn:
        ds = conn.execute(select(datasets.c.name, datasets.c.content_hash, datasets.c.size, datasets.c.id)).all()
        items = dict(conn.execute(select(dataset_items.c.dataset_id, func.count()).group_by(dataset_items.c.dataset_id)).all())
        out = {
            "calls": conn.execute(select(func.count()).select_from(teacher_calls)).scalar(),
            "examples": conn.execute(select(func.count()).select_from(examples)).scalar(),
            "datasets": Counter((d.name, d.content_hash) for d in ds),
            "items_match_size": all(items.get(d.id, 0) == d.size for d in ds),
            "status": Counter(r.status for r in conn.execute(select(runs.c.status))),
            "errors": [r.error for r in conn.execute(select(runs.c.error).where(runs.c.status == "failed"))],
            "failed_ids": {r.id for r in conn.execute(select(runs.c.id).where(runs.c.status == "failed"))},
            "finished_train": Counter(
                (r.name, r.dataset_hash) for r in conn.execute(select(runs.c.name, runs.c.dataset_hash).where(runs.c.kind == "train", runs.c.status == "finished"))
            ),
        }
    proj.engine.dispose()
    return out


def running_run(project: Path, proc: subprocess.Popen, timeout_s: float = 300) -> str:
    """The id of the evaluate run ``proc`` is running, once it appears in the store."""
    db = project / ".graduate" / "graduate.db"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, "graduate run ended before its evaluate run was seen running"
        if db.exists():
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
                try:
                    row = conn.execute(
                        "SELECT id FROM runs WHERE kind = 'evaluate' AND status = 'running' AND owner LIKE ?", (f"%:{proc.pid}",)
                    ).fetchone()
                except sqlite3.OperationalError:  # the schema is still being created
                    row = None
            if row:
                return row[0]
        time.sleep(0.02)
    raise AssertionError("no evaluate run seen running")


def test_sigkill_of_run_at_any_moment_then_a_rerun_ends_like_an_uninterrupted_run(tiny_project: Path, tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    shutil.copytree(tiny_project, reference)
    for p in (tiny_project, reference):
        _split(p)
    t0 = time.perf_counter()
    clean = subprocess.run(command(reference), env=cli_env(), capture_output=True, text=True, timeout=600)
    took = time.perf_counter() - t0
    assert clean.returncode == 0, clean.stderr
    want = json.loads((reference / ".graduate" / "summary.json").read_text())
    assert want["model_selection"]["split"]["held_out"] > 0

    killed = 0
    for share in (0.35, 0.5, 0.65, 0.8, 0.9):
        began = time.perf_counter()
        proc = subprocess.Popen(command(tiny_project), env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(share * took)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        else:  # faster than the clean run (the machine's load fell): aim the next kills within this one's time
            took = min(took, time.perf_counter() - began)
        proc.wait(timeout=120)
    assert killed >= 3, "the runs ended before the kills"
    # and once while it scores: killed with its evaluate run "running"
    proc = subprocess.Popen(command(tiny_project), env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cut = running_run(tiny_project, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=120)
    assert store(tiny_project)["status"]["running"] >= 1

    rerun = subprocess.run(command(tiny_project), env=cli_env(), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    got = json.loads((tiny_project / ".graduate" / "summary.json").read_text())
    # the same split, the same validation scores, the same best student
    assert got["dataset"]["content_hash"] == want["dataset"]["content_hash"]
    for key in ("held_out", "trained_on", "label_counts"):
        assert got["model_selection"]["split"][key] == want["model_selection"]["split"][key]
    assert got["model_selection"]["best_student"] == want["model_selection"]["best_student"]
    score = lambda s: {n: (v or {}).get("score") for n, v in s["model_selection"]["validation"].items()}  # noqa: E731
    assert score(got) == score(want)

    mine, theirs = store(tiny_project), store(reference)
    assert mine["calls"] == theirs["calls"] and mine["examples"] == theirs["examples"]
    assert max(mine["datasets"].values()) == 1 and set(mine["datasets"]) == set(theirs["datasets"])
    assert mine["items_match_size"]
    # the runs a kill cut short are marked failed, "interrupted", by the next run: none stays "running"
    assert mine["status"]["running"] == 0 and mine["status"]["failed"] >= 1
    assert all(e.startswith("interrupted: its process (") for e in mine["errors"])
    assert mine["failed_ids"] >= {cut}
    listed = subprocess.run([sys.executable, "-m", "graduate", "runs", "list", str(tiny_project)], env=cli_env(), capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and "failed (interrupted)" in listed.stdout and "running" not in listed.stdout
    # each student trained once on the split's training part: a run finished before a kill is reused
    assert max(mine["finished_train"].values()) == 1 and set(mine["finished_train"]) == set(theirs["finished_train"])
