"""`kill -9` while a data file that lost rows and gained others is loaded again: the store holds
the whole load (the new items added, the gone ones marked absent) or none of it, and the rerun
gives what an uninterrupted load gives."""

from __future__ import annotations

import csv
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from graduate.pipeline.project import Project
from graduate.store.schema import examples
from teacher.live_teacher import cli_env

LOAD = "import sys; from graduate.pipeline.project import Project; Project.load(sys.argv[1]).load_data()"


def _write(project: Path, ids: list[int]) -> None:
    with (project / "comments.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "comment_text", "is_bad", "subsets"])
        w.writerows([f"r{i}", f"comment number {i} about one thing or another", i % 2, "train"] for i in ids)


def _state(project: Path) -> tuple[set[str], set[str]]:
    """(ids stored, ids marked absent)."""
    proj = Project.load(project)
    with proj.engine.connect() as conn:
        rows = conn.execute(select(examples.c.external_id, examples.c.absent_since)).all()
    proj.engine.dispose()
    return {r.external_id for r in rows}, {r.external_id for r in rows if r.absent_since is not None}


def test_sigkill_while_loading_leaves_the_whole_load_or_none_and_the_rerun_completes(tiny_project: Path, tmp_path: Path) -> None:
    before = list(range(20_000))
    _write(tiny_project, before)
    proj = Project.load(tiny_project)
    proj.load_data()
    proj.engine.dispose()
    after = before[::2] + list(range(20_000, 26_000))  # half the rows gone, 6,000 new
    _write(tiny_project, after)
    reference = tmp_path / "reference"
    shutil.copytree(tiny_project, reference)
    t0 = time.perf_counter()
    clean = subprocess.run([sys.executable, "-c", LOAD, str(reference)], env=cli_env(), capture_output=True, text=True, timeout=300)
    took = time.perf_counter() - t0
    assert clean.returncode == 0, clean.stderr
    old = ({f"r{i}" for i in before}, set())
    new = _state(reference)
    assert new == ({f"r{i}" for i in before + after}, {f"r{i}" for i in before[1::2]})

    start = tmp_path / "start"
    shutil.copytree(tiny_project / ".graduate", start)
    killed = 0
    for share in (0.4, 0.55, 0.7, 0.8, 0.9, 0.97):
        shutil.rmtree(tiny_project / ".graduate")
        shutil.copytree(start, tiny_project / ".graduate")  # each kill from the store before the load
        began = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", LOAD, str(tiny_project)], env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(share * took)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        else:  # faster than the clean run (the machine's load fell): aim the next kills within this one's time
            took = min(took, time.perf_counter() - began)
        proc.wait(timeout=60)
        got = _state(tiny_project)
        assert got in (old, new), f"a kill at {share:.0%} left {len(got[0])} items stored, {len(got[1])} absent"
    assert killed >= 3, "the loads ended before the kills: write more rows"
    rerun = subprocess.run([sys.executable, "-c", LOAD, str(tiny_project)], env=cli_env(), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert _state(tiny_project) == new
