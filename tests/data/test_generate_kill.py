"""`kill -9` of `graduate synth` while the teacher writes or labels: the rerun stores exactly what an
uninterrupted run stores (the same texts, each once, with their lineage), re-sending only calls
that were in flight; a third run adds nothing."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from graduate.pipeline.project import Project
from graduate.store.schema import examples
from servers import fake_openai_server
from teacher.live_teacher import cli_env, point_teacher, sigkill_after

N, CONCURRENCY = 40, 4  # 4 writing calls of 10 texts, then 40 labelling calls


def synth_command(project: Path) -> list[str]:
    return [sys.executable, "-m", "graduate", "synth", str(project), "--target", "bad", "--n", str(N), "--seeds", "3"]


def made(project: Path) -> list[tuple[str, dict]]:
    proj = Project.load(project)
    with proj.engine.connect() as conn:
        rows = conn.execute(select(examples.c.text, examples.c.lineage).where(examples.c.source == "augment")).all()
    proj.engine.dispose()
    return [(r.text, r.lineage) for r in rows]


def rerun_then_nothing_more(server, command: list[str], project: Path) -> None:
    """The killed run's command again finishes; a third run sends nothing and adds nothing."""
    rerun = subprocess.run(command, env=cli_env(), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    after_rerun, sent = len(made(project)), server.stats()["requests"]
    third = subprocess.run(command, env=cli_env(), capture_output=True, text=True, timeout=300)
    assert third.returncode == 0, third.stderr
    assert len(made(project)) == after_rerun and server.stats()["requests"] == sent  # nothing sent, nothing added


@pytest.mark.parametrize("kill_after_ok", [2, 4 + N // 3], ids=["while-writing", "while-labelling"])
def test_sigkill_mid_synth_then_rerun_stores_what_an_uninterrupted_run_stores(trained_copy: Path, tmp_path: Path, kill_after_ok: int) -> None:
    reference = tmp_path / "reference"
    shutil.copytree(trained_copy, reference)
    # 0.5 s answers: at the kill the run still has seconds of calls left, time for a loaded machine's poll
    with fake_openai_server(latency=0.5, seed=1) as server:
        for project in (trained_copy, reference):
            point_teacher(project, server.base_url, concurrency=CONCURRENCY, requests_per_minute=60_000)
        client = subprocess.Popen(synth_command(trained_copy), env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        sigkill_after(server, client, kill_after_ok)
        assert len(made(trained_copy)) < N  # killed before it stored

        rerun_then_nothing_more(server, synth_command(trained_copy), trained_copy)
        paid = server.stats()  # before the reference run, which pays every call again into its own store
        clean = subprocess.run(synth_command(reference), env=cli_env(), capture_output=True, text=True, timeout=300)
        assert clean.returncode == 0, clean.stderr

    got, want = made(trained_copy), made(reference)
    assert len(got) == N and Counter(t for t, _ in got).most_common(1)[0][1] == 1
    assert sorted(t for t, _ in got) == sorted(t for t, _ in want)
    assert all(lin["method"] == "synth" and len(lin["seeds"]) == 3 and lin["label_call"] for _, lin in got)
    assert paid["paid_twice"] <= CONCURRENCY  # only calls in flight at the kill were sent again


def paraphrase_command(project: Path) -> list[str]:
    return [sys.executable, "-m", "graduate", "augment", str(project), "--kind", "paraphrase", "--items", "8", "--per-item", "5"]


@pytest.mark.parametrize("kill_after_ok", [3, 8 + 12], ids=["while-writing", "while-labelling"])
def test_sigkill_mid_paraphrase_then_rerun_stores_what_an_uninterrupted_run_stores(trained_copy: Path, tmp_path: Path, kill_after_ok: int) -> None:
    """As synth's: a paraphrase run killed while the teacher rewrites or labels, rerun, stores the
    rewrites an uninterrupted run stores, each once; a third run sends and adds nothing."""
    reference = tmp_path / "reference"
    shutil.copytree(trained_copy, reference)
    with fake_openai_server(latency=0.5, seed=1) as server:
        for project in (trained_copy, reference):
            point_teacher(project, server.base_url, concurrency=CONCURRENCY, requests_per_minute=60_000)
        client = subprocess.Popen(paraphrase_command(trained_copy), env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        sigkill_after(server, client, kill_after_ok)
        rerun_then_nothing_more(server, paraphrase_command(trained_copy), trained_copy)
        clean = subprocess.run(paraphrase_command(reference), env=cli_env(), capture_output=True, text=True, timeout=300)
        assert clean.returncode == 0, clean.stderr
    got, want = made(trained_copy), made(reference)
    assert got and Counter(t for t, _ in got).most_common(1)[0][1] == 1
    assert sorted(t for t, _ in got) == sorted(t for t, _ in want)
    assert all(lin["method"] == "paraphrase" and lin["parent"] and lin["label_call"] for _, lin in got)
