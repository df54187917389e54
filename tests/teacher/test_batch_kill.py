"""`kill -9` of `graduate batch submit` after each of its steps, and of `collect` mid-download: the
rerun finishes the job, every item is answered once, no batch is created twice, nothing paid twice."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from servers import fake_batch_server
from teacher.live_teacher import cli_env, point_teacher
from teacher.test_batch import batch_rows, run_cli

N = 20


def _batch(project: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "graduate", "batch", *args, str(project), *(["--input", str(project / "comments.csv"), "--limit", str(N)] if args[0] == "submit" else [])]


def _kill_when_hung(command: list[str], server) -> None:
    client = subprocess.Popen(command, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while server.stats()["hung"] < 1:
        assert client.poll() is None, f"the client ended before the kill: {client.communicate()[1]}"
        assert time.monotonic() < deadline, "the client never reached the step"
        time.sleep(0.05)
    client.send_signal(signal.SIGKILL)
    client.communicate(timeout=30)
    assert client.returncode == -signal.SIGKILL


# upload-before: killed after the plan was committed, before the provider had the file;
# upload: the provider has the file, the client never learnt its id;
# create-before: the file id is recorded, the batch not created;
# create: the provider created the batch, the client never learnt its id.
@pytest.mark.parametrize("step", ["upload-before", "upload", "create-before", "create"])
def test_submit_killed_after_each_step_resumes_without_a_second_batch(tiny_project: Path, step: str) -> None:
    with fake_batch_server(hang_at=step) as server:
        point_teacher(tiny_project, server.base_url)
        _kill_when_hung(_batch(tiny_project, "submit"), server)
        assert Counter(r.status for r in batch_rows(tiny_project)) == {"pending": N}  # the plan survived the kill

        resumed = run_cli("submit", str(tiny_project), "--input", str(tiny_project / "comments.csv"), "--limit", str(N))
        assert resumed.returncode == 0, resumed.stderr
        assert "held by an open batch (not sent twice)" in resumed.stdout
        server.advance(60)
        collected = run_cli("collect", str(tiny_project))
        assert collected.returncode == 0, collected.stderr
        stats = server.stats()

    rows = batch_rows(tiny_project)
    assert len(rows) == N and {r.status for r in rows} == {"ok"}
    assert stats["creates"] == 1, f"a second batch was created: {stats}"
    assert stats["answered"] == N and stats["paid_twice"] == 0
    if step in ("upload", "create-before", "create"):
        assert stats["uploads"] == 1  # the uploaded file was found by its name, not sent again


def test_collect_killed_mid_download_stores_nothing_then_the_rerun_collects_once(tiny_project: Path) -> None:
    with fake_batch_server(hang_at="content") as server:
        point_teacher(tiny_project, server.base_url)
        assert run_cli("submit", str(tiny_project), "--input", str(tiny_project / "comments.csv"), "--limit", str(N)).returncode == 0
        server.advance(60)
        _kill_when_hung(_batch(tiny_project, "collect"), server)
        assert Counter(r.status for r in batch_rows(tiny_project)) == {"pending": N}
        assert not list((tiny_project / ".graduate" / "batches").glob("*.output.jsonl"))  # only a .part, never read

        collected = run_cli("collect", str(tiny_project))
        assert collected.returncode == 0, collected.stderr
        again = run_cli("collect", str(tiny_project))
        assert again.returncode == 0 and "nothing to collect" in again.stdout
        stats = server.stats()
    rows = batch_rows(tiny_project)
    assert len(rows) == N and {r.status for r in rows} == {"ok"}
    assert stats["answered"] == N and stats["paid_twice"] == 0


def test_collect_killed_while_storing_leaves_all_or_nothing(tiny_project: Path) -> None:
    import random

    from graduate.pipeline import batch
    from graduate.pipeline.project import Project
    from teacher.test_batch import client

    texts = [f"comment {i}: you are {'an idiot' if i % 3 == 0 else 'kind'} ({i})" for i in range(3000)]
    with fake_batch_server() as server:
        point_teacher(tiny_project, server.base_url)
        proj = Project.load(tiny_project)
        with client(proj) as api:
            batch.submit(proj, texts, client=api)
        server.advance(60)
        rng = random.Random(7)
        for _ in range(3):
            collecting = subprocess.Popen(_batch(tiny_project, "collect"), env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            time.sleep(rng.uniform(0.5, 4.0))
            collecting.send_signal(signal.SIGKILL)
            collecting.communicate(timeout=30)
            statuses = Counter(r.status for r in batch_rows(tiny_project))
            assert statuses in (Counter({"pending": 3000}), Counter({"ok": 3000})), statuses  # one transaction: never a part
            if statuses["ok"]:
                break
        final = run_cli("collect", str(tiny_project))
        assert final.returncode == 0, final.stderr
        stats = server.stats()
    assert Counter(r.status for r in batch_rows(tiny_project)) == {"ok": 3000}
    assert stats["paid_twice"] == 0 and stats["answered"] == 3000
