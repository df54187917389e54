"""Limits, over real HTTP: 413 past the body limit (declared or streamed), 422 naming the field,
429 with Retry-After at the in-flight bound (answered at once, not queued), and 504 past the
per-request timeout, with the teacher call it cut short logged as an error."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
from sqlalchemy import select

from graduate.pipeline.project import Project
from graduate.serve.app import create_app
from graduate.store.schema import teacher_calls
from servers import fake_openai_server
from servers.graduate_server import AUTH, ThreadServer, options, set_teacher


def test_body_limit_and_validation_errors(served):
    proj = Project.load(served)
    app = create_app(proj, options(proj, max_body_bytes=2048, max_batch=3))
    with ThreadServer(app) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
        big = {"texts": ["x" * 3000]}
        r = client.post("/v1/classify", json=big)
        assert r.status_code == 413 and "serve.max_body_bytes" in r.json()["error"]["message"]

        def chunks():  # no content-length: the limit is counted while reading
            for _ in range(10):
                yield b'{"texts": ["' + b"y" * 500 + b'"]}'

        r = client.post("/v1/classify", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413

        r = client.post("/v1/classify", json={"texts": ["fine", 3]})
        assert r.status_code == 422
        err = r.json()["error"]
        assert err["param"] == "texts.1" and "valid string" in err["message"]

        r = client.post("/v1/classify", json={"texts": []})
        assert r.status_code == 422 and r.json()["error"]["param"] == "texts"

        r = client.post("/v1/classify", json={"texts": ["a", "b", "c", "d"]})
        assert r.status_code == 422 and r.json()["error"]["param"] == "texts" and "serve.max_batch" in r.json()["error"]["message"]

        r = client.post("/v1/chat/completions", json={"model": "m"})
        assert r.status_code == 422 and r.json()["error"]["param"] == "messages"

        r = client.post("/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_json" and "not valid JSON" in r.json()["error"]["message"]
        r = client.post("/v1/chat/completions", content=b'{"model": "m"}', headers={"content-type": "text/plain"})
        assert r.status_code == 422 and "Content-Type: application/json" in r.json()["error"]["message"]

        assert client.post("/v1/classify", json={"texts": ["a", "b"]}).status_code == 200
        metrics = client.get("/metrics").text
        assert 'graduate_rejected_total{reason="too_large"} 2.0' in metrics
        assert 'graduate_requests_total{endpoint="/v1/classify",status="422"} 3.0' in metrics


def test_in_flight_bound_answers_429_with_retry_after_at_once(served):
    # cascade at threshold 1.0 sends every item to a teacher that takes 4 s: requests stay in flight
    # (long enough that the third request still finds both slots taken on a loaded machine)
    with fake_openai_server(latency=4.0) as teacher:
        set_teacher(served, base_url=teacher.base_url)
        proj = Project.load(served)
        app = create_app(proj, options(proj, mode="cascade", cascade_threshold=1.0, max_in_flight=2, retry_after_s=3))
        with ThreadServer(app) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
            results: list[int] = []

            def slow(i: int) -> None:
                results.append(client.post("/v1/classify", json={"texts": [f"slow request {i} {uuid.uuid4()}"]}).status_code)

            threads = [threading.Thread(target=slow, args=(i,)) for i in range(2)]
            for t in threads:
                t.start()
            deadline = time.monotonic() + 60
            while 'graduate_in_flight 2.0' not in client.get("/metrics").text:
                assert time.monotonic() < deadline, "the two slow requests never got in flight"
                time.sleep(0.02)
            t0 = time.perf_counter()
            r = client.post("/v1/classify", json={"texts": ["one too many"]})
            elapsed = time.perf_counter() - t0
            assert r.status_code == 429
            assert r.headers["retry-after"] == "3"
            assert r.json()["error"]["code"] == "overloaded"
            assert elapsed < 2.0  # refused at once, not queued behind the slow ones (4 s)
            # health checks are not limited
            assert client.get("/healthz").status_code == 200
            for t in threads:
                t.join()
            assert results == [200, 200]
            assert client.post("/v1/classify", json={"texts": ["room again"]}).status_code == 200
        assert teacher.stats()["ok"] == 3  # the two slow ones and "room again"; the refused one never reached it


def test_request_timeout_answers_504_and_logs_the_cut_call(served):
    """A request with no student answer to fall back on (a chat request passed to the teacher as it
    is) and a teacher slower than serve.request_timeout_s: 504, and the cut call is logged."""
    other = [{"role": "user", "content": f"never answered in time {uuid.uuid4()}"}]
    with fake_openai_server(latency=10.0) as teacher:
        set_teacher(served, base_url=teacher.base_url)
        proj = Project.load(served)
        app = create_app(proj, options(proj, fallback_to_teacher=True, request_timeout_s=0.5))
        with ThreadServer(app) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
            t0 = time.perf_counter()
            r = client.post("/v1/chat/completions", json={"model": "gpt-4-1106-preview", "messages": other})
            elapsed = time.perf_counter() - t0
            assert r.status_code == 504, r.text
            assert "serve.request_timeout_s" in r.json()["error"]["message"]
            assert 0.4 < elapsed < 5.0  # cut at 0.5 s, well before the teacher's 10 s (slack for a loaded machine)
            assert 'graduate_rejected_total{reason="timeout"} 1.0' in client.get("/metrics").text
        with proj.engine.connect() as conn:
            calls = conn.execute(select(teacher_calls.c.status, teacher_calls.c.error).where(teacher_calls.c.source == "live")).all()
        assert len(calls) == 1 and calls[0].status == "error" and "cancelled" in calls[0].error
