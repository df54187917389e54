"""`kill -9` of `graduate label` mid-run: the re-run finishes the job and re-sends only what was in flight."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

from servers import fake_openai_server
from servers.fake_openai import content_key
from teacher.live_teacher import cli_env, label_command, live_calls, point_teacher, run_label, sigkill_after

N = 50
CONCURRENCY = 8


def test_sigkill_mid_run_then_resume_pays_each_finished_call_once(tiny_project: Path) -> None:
    # 1 s answers: at the kill (after N // 3) about 4 s of calls are left, time for a loaded machine's
    # poll to kill it mid-run (at 0.2 s, under a second: the run could end first)
    with fake_openai_server(latency=1.0, seed=1) as server:
        point_teacher(tiny_project, server.base_url, concurrency=CONCURRENCY, requests_per_minute=60_000)
        client = subprocess.Popen(
            label_command(tiny_project, "--limit", str(N)),
            env=cli_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        sigkill_after(server, client, N // 3, timeout_s=60)

        at_kill = live_calls(tiny_project)
        in_flight = [r for r in at_kill if r.status == "pending"]
        finished = {content_key(r.request["messages"]) for r in at_kill if r.status == "ok"}
        assert {r.status for r in at_kill} <= {"ok", "pending"}
        assert N // 3 - CONCURRENCY <= len(finished) < N and len(in_flight) <= CONCURRENCY

        resumed = run_label(tiny_project, "--limit", str(N))
        assert resumed.returncode == 0, resumed.stderr
        served = server.stats(detail=True)

    rows = live_calls(tiny_project)
    assert len(rows) == N and {r.status for r in rows} == {"ok"}
    assert Counter(r.cache_key for r in rows).most_common(1)[0][1] == 1
    paid = served["per_content"]
    assert set(paid) == {content_key(r.request["messages"]) for r in rows}
    # Calls finished before the kill were never sent again; only those in flight may have been paid twice.
    assert all(paid[key] == 1 for key in finished)
    assert served["paid_twice"] <= len(in_flight)
    assert served["ok"] == N + served["paid_twice"]


def test_ctrl_c_says_what_is_kept_and_the_rerun_finishes(tiny_project: Path) -> None:
    """Typer turned Ctrl-C into a silent exit 130: the CLI's 'interrupted' line never showed."""
    import signal
    import time

    n = 30
    # 0.5 s answers: after the 4th, the run has 6 s left, time for a loaded machine's poll to send SIGINT
    with fake_openai_server(latency=0.5) as server:
        point_teacher(tiny_project, server.base_url, concurrency=2, requests_per_minute=60_000)
        client = subprocess.Popen(
            label_command(tiny_project, "--limit", str(n)), env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # a shell's background job would ignore it
        )
        deadline = time.monotonic() + 60
        while server.stats()["ok"] < 4:
            assert client.poll() is None and time.monotonic() < deadline, client.communicate()[1]
            time.sleep(0.02)
        client.send_signal(signal.SIGINT)
        _, err = client.communicate(timeout=60)
        assert client.returncode == 130
        assert "interrupted: finished work is stored; run the same command again to resume" in err, err
        resumed = run_label(tiny_project, "--limit", str(n))
        assert resumed.returncode == 0, resumed.stderr
    rows = live_calls(tiny_project)
    assert len(rows) == n and {r.status for r in rows} == {"ok"}
