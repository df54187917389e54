"""Issue 12: `graduate proxy` (a real process) never reaches outside the upstream's /v1, forwards
only its allowed routes (the project's key must not reach files or fine-tuning), and answers a
lone surrogate with a logged call, not a plain-text 500."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx
from sqlalchemy import select

from graduate.pipeline.project import Project
from graduate.serve.proxy import route_allowed, safe_path
from graduate.spec import DEFAULT_PROXY_ROUTES
from graduate.store.schema import teacher_calls
from servers import fake_openai_server
from servers.graduate_server import cli_env, prompt_messages

APP_KEY = "app-key-1"
UPSTREAM_KEY = "sk-project-key"


@contextmanager
def proxy_process(project: Path, upstream: str, *args: str) -> Iterator[str]:
    cmd = [sys.executable, "-m", "graduate", "proxy", str(project), "--upstream", upstream, "--port", "0", *args]
    env = cli_env(GRADUATE_API_KEYS=APP_KEY, OPENAI_API_KEY=UPSTREAM_KEY)
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[str] = []
    url: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith("listening on "):
                url.append(line.removeprefix("listening on ").strip())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 180
        while not url:
            assert process.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.05)
        yield url[0]
    finally:
        process.terminate()
        process.wait(30)
        reader.join(60)


def raw_request(base: str, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    """http.client sends the path as written (httpx would resolve the dots first)."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"authorization": f"Bearer {APP_KEY}", "content-type": "application/json"}
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def test_the_proxy_stays_inside_v1_and_forwards_only_allowed_routes(tiny_project):
    with fake_openai_server() as upstream, proxy_process(tiny_project, upstream.base_url, "--key-from-env") as proxy:
        for path in ("/v1/../stats", "/v1/%2e%2e/stats", "/v1/..%2fstats", "/v1/models/..%2F..%2Fstats", "/v1//stats", "/v1/.%2e/stats"):
            status, body = raw_request(proxy, "GET", path)
            assert status in (400, 404), (path, status, body[:200])
        for method, path in (("DELETE", "/v1/files/x"), ("POST", "/v1/fine_tuning/jobs"), ("GET", "/v1/files"), ("POST", "/v1/batches")):
            status, body = raw_request(proxy, method, path, b"{}" if method == "POST" else None)
            assert status == 404, (method, path, status)
            assert "proxy.routes" in json.loads(body)["error"]["message"]
        status, _ = raw_request(proxy, "GET", "/v1/models")  # allowed: reaches the upstream (which has no such route)
        assert status == 404
        stats = upstream.stats()
    # Nothing but the one allowed request ever reached the upstream outside chat completions.
    assert stats["other_requests"] == ["GET /v1/models"], stats["other_requests"]
    assert stats["requests"] == 0


def test_a_lone_surrogate_through_the_proxy_is_forwarded_and_logged(tiny_project):
    proj = Project.load(tiny_project)
    with fake_openai_server() as upstream, proxy_process(tiny_project, upstream.base_url, "--key-from-env") as proxy:
        messages = prompt_messages(proj, "you idiot \ud800")
        status, body = raw_request(proxy, "POST", "/v1/chat/completions", json.dumps({"model": "gpt-4-1106-preview", "messages": messages}).encode())
        assert status == 200, body[:300]
        assert json.loads(body)["choices"][0]["message"]["content"] == '{"is_bad": 1}'
        # Garbage still gets an OpenAI-shaped answer, never a plain-text 500.
        status, body = raw_request(proxy, "POST", "/v1/chat/completions", b'{"model": "m", "messages": [{"role": "user", "content": "\xed\xa0\x80"}]}')
        assert status == 200 and json.loads(body)["choices"]
    with proj.engine.connect() as conn:
        rows = conn.execute(select(teacher_calls.c.status, teacher_calls.c.request).where(teacher_calls.c.source == "proxy")).all()
    assert [r.status for r in rows] == ["ok", "ok"]
    assert "\ufffd" in rows[0].request["messages"][-1]["content"]


def test_route_rules():
    assert route_allowed("POST", "chat/completions", DEFAULT_PROXY_ROUTES)
    assert route_allowed("GET", "models/gpt-4", DEFAULT_PROXY_ROUTES)
    assert not route_allowed("GET", "models/a/b", DEFAULT_PROXY_ROUTES)
    assert not route_allowed("DELETE", "models/gpt-4", DEFAULT_PROXY_ROUTES)
    assert not route_allowed("POST", "files", DEFAULT_PROXY_ROUTES)
    for bad in ("../stats", "models/..", "a//b", "", "a\\..\\b", "./x"):
        assert safe_path(bad) is None, bad
    assert safe_path("chat/completions") == "chat/completions"
