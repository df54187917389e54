"""`graduate proxy` killed with kill -9 while a call is with the upstream: the call stays pending
only until the next proxy starts, which marks it failed with the reason (it never ends otherwise)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx
from servers import fake_openai_server
from servers.graduate_server import cli_env, prompt_messages
from sqlalchemy import select, update

from graduate.pipeline.project import Project
from graduate.store.schema import teacher_calls


def _start_proxy(project: Path, upstream: str) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "graduate", "proxy", str(project), "--upstream", upstream, "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=cli_env())
    assert proc.stdout is not None
    deadline = time.monotonic() + 90
    for line in proc.stdout:
        if line.startswith("listening on "):
            url = line.removeprefix("listening on ").strip()
            break
        assert time.monotonic() < deadline, line
    else:
        raise AssertionError(f"graduate proxy did not start (exit {proc.wait()})")
    while True:  # the lifespan has run once a request is answered
        try:
            httpx.get(f"{url}/v1/models", timeout=5)
            return proc, url
        except httpx.HTTPError:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)


def _proxy_rows(project: Path) -> list:
    engine = Project.load(project).engine
    with engine.connect() as conn:
        rows = conn.execute(select(teacher_calls).where(teacher_calls.c.source == "proxy").order_by(teacher_calls.c.id)).all()
    engine.dispose()
    return rows


def test_a_call_left_pending_by_a_killed_proxy_is_failed_by_the_next(tiny_project: Path) -> None:
    proj = Project.load(tiny_project)
    body = {"model": "gpt-4-1106-preview", "messages": prompt_messages(proj, "you stupid moron"), "temperature": 0}
    with fake_openai_server(latency=60) as upstream:
        first, url = _start_proxy(tiny_project, upstream.base_url)
        try:
            caller = threading.Thread(target=lambda: _quietly(lambda: httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30)), daemon=True)
            caller.start()
            deadline = time.monotonic() + 30
            while upstream.stats()["requests"] < 1:
                assert time.monotonic() < deadline, "the call did not reach the upstream"
                time.sleep(0.05)
        finally:
            first.send_signal(signal.SIGKILL)
            first.communicate(timeout=30)
        caller.join(30)
        assert [r.status for r in _proxy_rows(tiny_project)] == ["pending"]

        second, _ = _start_proxy(tiny_project, upstream.base_url)
        try:
            rows = _proxy_rows(tiny_project)
        finally:
            second.send_signal(signal.SIGTERM)
            second.communicate(timeout=60)
    assert [r.status for r in rows] == ["error"], rows
    assert rows[0].error.startswith("graduate proxy stopped before the upstream answered (killed?)"), rows[0].error


def test_calls_of_another_host_are_left_and_shown_and_an_old_tag_of_an_ended_proxy_is_failed(tiny_project: Path) -> None:
    """Owner tags before START (proxy:HOST:PID) stayed pending for good, as did another host's calls,
    which nothing showed either. Now an old tag of this host is failed once no process has its PID;
    another host's calls are left to that host (its proxy may still be waiting on them), and
    `graduate status` counts them with the age of the oldest."""
    from graduate.store.calls import begin_call
    from graduate.store.db import now

    host = socket.gethostname()[:32]
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    owners = {
        "old tag, ended": f"proxy:{host}:{ended.pid}",
        "old tag, running": f"proxy:{host}:{os.getpid()}",  # this test's process: may be that proxy still
        "other host": f"proxy:replica-2.example:{ended.pid}:1764590000000",
        "other host, later": f"proxy:replica-2.example:{ended.pid}:1764590000000",
    }
    engine = Project.load(tiny_project).engine
    ids = {
        name: begin_call(engine, cache_key=f"k{i}", model="gpt-4o-mini", request={"messages": []}, params={}, source="proxy", owner=owner)
        for i, (name, owner) in enumerate(owners.items())
    }
    with engine.begin() as conn:  # logged 3 h 20 min ago (a minute later for the second)
        for name, minutes in (("other host", 200), ("other host, later", 199)):
            conn.execute(update(teacher_calls).where(teacher_calls.c.id == ids[name]).values(created_at=now() - timedelta(minutes=minutes)))
    engine.dispose()

    with fake_openai_server() as upstream:
        proxy, _ = _start_proxy(tiny_project, upstream.base_url)
        proxy.send_signal(signal.SIGTERM)
        proxy.communicate(timeout=60)
    status = {r.id: (r.status, r.error) for r in _proxy_rows(tiny_project)}
    assert status[ids["old tag, ended"]][0] == "error" and "graduate proxy stopped" in status[ids["old tag, ended"]][1]
    assert [status[ids[n]] for n in ("old tag, running", "other host", "other host, later")] == [("pending", None)] * 3

    shown = subprocess.run([sys.executable, "-m", "graduate", "status", str(tiny_project)], capture_output=True, text=True, timeout=120, env=cli_env())
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"with the proxy on host replica-2\.example \(oldest 3 h 20 min old;.*│\s*2\b", shown.stdout), shown.stdout
    assert len(re.findall("with the proxy on host", shown.stdout)) == 1, shown.stdout  # this host's calls are not among them


def _quietly(call) -> None:
    try:
        call()
    except httpx.HTTPError:
        pass  # the proxy was killed under it
