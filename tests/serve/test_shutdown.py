"""`graduate serve` as a real process: SIGTERM under load loses no traffic row of an answered
request, and requests in flight at SIGTERM are finished before the process exits."""

from __future__ import annotations

import signal
import threading
import time
import uuid

import httpx

from graduate.pipeline.project import Project
from graduate.store.traffic import count_traffic, read_traffic, request_ids
from servers import fake_openai_server
from servers.graduate_server import AUTH, cli_env, comments, serve_process, set_teacher

ENV = {"GRADUATE_API_KEYS": "test-key-1"}


def test_sigterm_under_load_loses_no_traffic(served):
    texts = comments(served, 40)
    acknowledged: dict[str, int] = {}  # request id -> texts sent
    failures: list[str] = []
    stop = threading.Event()
    # the student runs in a worker process (the default), as in production
    with serve_process(served, "--workers", "1", env=cli_env(**ENV)) as server:

        def load(k: int) -> None:
            with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
                i = 0
                while not stop.is_set():
                    i += 1
                    batch = texts[(k + i) % 38 : (k + i) % 38 + 3]
                    try:
                        r = client.post("/v1/classify", json={"texts": batch})
                    except httpx.HTTPError:
                        time.sleep(0.01)  # refused once the server stopped listening: never answered, never logged
                        continue
                    if r.status_code == 200:
                        acknowledged[r.headers["x-request-id"]] = len(batch)
                    else:
                        failures.append(f"{r.status_code} {r.text[:200]}")

        threads = [threading.Thread(target=load, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60  # a loaded machine may take more than a second to get going
        while len(acknowledged) <= 20 and not failures and time.monotonic() < deadline:
            time.sleep(0.05)
        sent_before_stop = len(acknowledged)
        rc = server.stop(signal.SIGTERM)
        stop.set()
        for t in threads:
            t.join(30)
    assert sent_before_stop > 20, "the load never got going"
    assert rc in (0, -signal.SIGTERM), server.text
    assert not failures, failures[:3]
    assert "stopped: " in server.text and "traffic rows written" in server.text
    logged = request_ids(Project.load(served).engine)
    missing = set(acknowledged) - logged
    assert not missing, f"{len(missing)} of {len(acknowledged)} answered requests have no traffic row"
    per_request: dict[str, int] = {}
    for row in read_traffic(Project.load(served).engine):
        per_request[row.request_id] = per_request.get(row.request_id, 0) + 1
    assert all(per_request[rid] == n for rid, n in acknowledged.items())  # every item of every answered request


def test_sigterm_finishes_in_flight_requests(served):
    with fake_openai_server(latency=3.0) as teacher:
        set_teacher(served, base_url=teacher.base_url)
        with serve_process(served, "--mode", "cascade", "--threshold", "1.0", "--workers", "0", env=cli_env(**ENV)) as server:
            statuses: list[tuple[int, str]] = []

            def ask(i: int) -> None:
                r = httpx.post(f"{server.url}/v1/classify", headers=AUTH, json={"texts": [f"in flight {i} {uuid.uuid4()}"]}, timeout=30)
                statuses.append((r.status_code, r.json()["results"][0]["route"] if r.status_code == 200 else r.text))

            threads = [threading.Thread(target=ask, args=(i,)) for i in range(3)]
            for t in threads:
                t.start()
            deadline = time.monotonic() + 60
            while teacher.stats()["requests"] < 3:  # all three are waiting on the teacher
                assert time.monotonic() < deadline, f"{teacher.stats()['requests']} of 3 requests reached the teacher"
                time.sleep(0.02)
            t0 = time.monotonic()
            rc = server.stop(signal.SIGTERM)
            waited = time.monotonic() - t0
            for t in threads:
                t.join(30)
    assert statuses == [(200, "teacher")] * 3, statuses
    assert waited > 0.3  # it waited for them rather than dropping them
    assert rc in (0, -signal.SIGTERM), server.text
    rows = read_traffic(Project.load(served).engine)
    assert len(rows) == 3 and all(r.route == "teacher" and r.teacher_label is not None for r in rows)


def _descendants(pid: int) -> list[int]:
    from pathlib import Path

    out, stack = [], [pid]
    while stack:
        p = stack.pop()
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                kids = [int(c) for c in (task / "children").read_text().split()]
                out += kids
                stack += kids
        except FileNotFoundError:
            continue
    return out


def test_killed_server_leaves_no_prediction_worker_behind(served):
    import os

    with serve_process(served, "--workers", "1", env=cli_env(**ENV)) as server:
        workers = _descendants(server.process.pid)
        assert workers, "the student should run in a worker process"
        server.stop(signal.SIGKILL)
    deadline = time.monotonic() + 60
    alive = workers
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [p for p in alive if os.path.exists(f"/proc/{p}") and "zombie" not in open(f"/proc/{p}/status").read().lower()]
    assert not alive, f"orphaned processes: {alive}"


def test_kill_9_in_shadow_mode_keeps_every_answered_item_whose_comparison_was_running(served):
    """Shadow rows were held in memory until the teacher's comparison settled (minutes for a
    hanging teacher): after kill -9, 14 of 30 answered items had no traffic row. Now each row is
    written with its answer and the comparison fills it in later; one left pending is no disagreement."""
    from graduate.store.traffic import shadow_disagreements

    n = 30
    with fake_openai_server(phang=1.0, hang_s=120) as hanging:
        set_teacher(served, base_url=hanging.base_url, timeout_s=120)
        with serve_process(served, "--mode", "shadow", "--shadow-rate", "1", env=cli_env(**ENV)) as server:
            with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
                answered = [client.post("/v1/classify", json={"texts": [f"shadowed item {i} {uuid.uuid4().hex[:6]}"]}) for i in range(n)]
            assert [r.status_code for r in answered] == [200] * n
            # Rows are flushed every serve.traffic_flush_s (0.2 s), comparisons or not: wait for the
            # flush (a loaded machine may take longer than a few intervals), not for the teacher.
            engine, deadline = Project.load(served).engine, time.monotonic() + 60
            while count_traffic(engine) < n and time.monotonic() < deadline:
                time.sleep(0.1)
            engine.dispose()
            server.stop(signal.SIGKILL)
        assert hanging.stats()["hangs"] >= 1  # comparisons were still waiting on the teacher
    rows = read_traffic(Project.load(served).engine)
    assert {r.request_id for r in rows} == {r.headers["x-request-id"] for r in answered} and len(rows) == n
    pending = [r for r in rows if r.shadow]
    assert pending and all(r.teacher_label is None and r.agree is None and r.teacher_error is None for r in pending)
    assert shadow_disagreements(Project.load(served).engine) == []
