"""Issue 12: defects found by probing `graduate serve` from outside, each against the real server
process. A legal batch must not wedge the prediction worker (1), a lone surrogate must not stop
the traffic log (2), slow headers or bodies must not hold capacity (5), and two Authorization
headers are refused (10)."""

from __future__ import annotations

import json
import select as selectors_
import signal
import socket
import threading
import time
from pathlib import Path

import httpx
import yaml
from sqlalchemy import select

from graduate.pipeline.project import Project
from graduate.store.schema import traffic
from servers.graduate_server import AUTH, KEY, cli_env, comments, serve_process

ENV = {"GRADUATE_API_KEYS": KEY}


def set_serve(project_dir: Path, **serve: object) -> None:
    path = project_dir / "graduate.yaml"
    spec = yaml.safe_load(path.read_text())
    spec.setdefault("serve", {}).update(serve)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))


def traffic_texts(project_dir: Path) -> list[str]:
    engine = Project.load(project_dir).engine
    with engine.connect() as conn:
        rows = [r[0] for r in conn.execute(select(traffic.c.text).order_by(traffic.c.id))]
    engine.dispose()
    return rows


def test_full_size_batches_never_wedge_the_prediction_worker(served):
    texts = comments(served)
    batch = [f"{texts[i % len(texts)][:120]} #{i}" for i in range(2048)]
    with serve_process(served, "--workers", "1", env=cli_env(**ENV)) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as client:
        for round_ in range(4):
            r = client.post("/v1/classify", json={"texts": batch})
            assert r.status_code == 200, (round_, r.status_code, r.text[:300])
            assert len(r.json()["results"]) == 2048
            small = client.post("/v1/classify", json={"texts": ["hi"]})
            assert small.status_code == 200, small.text[:300]
        ready = client.get("/readyz").json()
        assert ready["ready"] and ready["worker_restarts"] == 0, ready


def test_lone_surrogates_are_answered_and_logged(served):
    with serve_process(served, "--workers", "0", env=cli_env(**ENV)) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
        escaped = b'{"texts": ["\\ud800 x", "fine"]}'
        raw = b'{"texts": ["\xed\xa0\x80 raw"]}'  # the UTF-8 bytes of a lone surrogate
        head = {"content-type": "application/json"}
        answered = 0
        for body in (escaped, raw):
            r = client.post("/v1/classify", content=body, headers=head)
            assert r.status_code == 200, r.text[:300]
            answered += len(r.json()["results"])
        chat = {"model": "m", "messages": [{"role": "user", "content": "\ud800"}]}
        r = client.post("/v1/chat/completions", content=json.dumps(chat).encode(), headers=head)
        assert r.status_code in (200, 422), r.text[:300]  # not the template: a defined refusal
        # The log keeps working after them.
        r = client.post("/v1/classify", json={"texts": ["after"]})
        assert r.status_code == 200
        answered += 1
        deadline = time.monotonic() + 60
        while client.get("/readyz").json()["traffic_pending_rows"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["traffic_spilled_rows"] == 0, ready.text
        rc = server.stop(signal.SIGTERM)
    assert rc in (0, -signal.SIGTERM), server.text
    assert f"stopped: {answered} traffic rows written" in server.text, server.text
    assert traffic_texts(served) == ["\ufffd x", "fine", "\ufffd raw", "after"]


def _trickle(url: str, stop: threading.Event, results: list[str], *, headers_only: bool) -> None:
    """Send a request a byte every 0.25 s (the headers, or only the body) until the server answers."""
    host, port = url.removeprefix("http://").split(":")
    body = b'{"texts": ["slow"]}'
    head = f"POST /v1/classify HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {KEY}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n".encode()
    first, rest = (head[:20], head[20:] + body) if headers_only else (head, body)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(first)
        try:
            for ch in rest:
                if stop.is_set() or selectors_.select([sock], [], [], 0)[0]:
                    break  # the server has answered (or closed)
                sock.sendall(bytes([ch]))
                time.sleep(0.25)
            reply = sock.recv(4096)
        except OSError as exc:
            reply = f"closed: {exc}".encode()
    results.append(reply.decode("latin-1").split("\r\n", 1)[0] or "closed")


def test_slow_headers_and_bodies_are_cut_off_and_hold_no_capacity(served):
    set_serve(served, max_in_flight=2, body_timeout_s=1.0)
    with serve_process(served, "--workers", "0", env=cli_env(**ENV)) as server:
        stop = threading.Event()
        results: list[str] = []
        threads = [threading.Thread(target=_trickle, args=(server.url, stop, results), kwargs={"headers_only": i % 2 == 0}) for i in range(6)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as client:
            # Six trickling clients, two in-flight slots: a normal request is still served.
            r = client.post("/v1/classify", json={"texts": ["a normal request"]})
            assert r.status_code == 200, r.text[:300]
        for t in threads:
            t.join(60)
        stop.set()
    assert len(results) == 6
    assert all("408" in line or line.startswith("closed") for line in results), results
    assert sum("408" in line for line in results) >= 3, results


def test_two_authorization_headers_are_refused(served):
    with serve_process(served, "--workers", "0", env=cli_env(**ENV)) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        headers = [("authorization", f"Bearer {KEY}"), ("authorization", "Bearer someone-else")]
        r = client.post("/v1/classify", json={"texts": ["x"]}, headers=headers)
        assert r.status_code == 400 and r.json()["error"]["code"] == "ambiguous_authorization", r.text
        r = client.post("/v1/classify", json={"texts": ["x"]}, headers={"authorization": f"bearer   {KEY}"})
        assert r.status_code == 200  # the scheme is case-insensitive, spaces are fine


def test_a_port_in_use_is_one_line_naming_the_address_and_the_fix(trained_copy: Path) -> None:
    """`graduate serve --port P` (and `graduate proxy`) with P taken ended in an internal error
    (OSError from the bind, exit 70); it is a usage error: exit 2, one line."""
    import subprocess
    import sys

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        for cmd in (["serve", str(trained_copy), "--port", str(port)], ["proxy", str(trained_copy), "--upstream", "http://127.0.0.1:9/v1", "--port", str(port)]):
            r = subprocess.run([sys.executable, "-m", "graduate", *cmd], capture_output=True, text=True, timeout=300, env=cli_env(**ENV))
            assert r.returncode == 2, r.stdout + r.stderr
            (line,) = r.stderr.strip().splitlines()
            assert line.startswith(f"error: cannot listen on 127.0.0.1:{port}: ") and "pick another port with --port (0 picks a free one)" in line, line


def test_a_bad_serve_option_names_the_option_not_the_spec(trained_copy: Path) -> None:
    """`graduate serve --threshold 2` said "spec: serve.cascade_threshold: ...": the user looked in a
    graduate.yaml that was fine. The option typed is named, with the value given."""
    import subprocess
    import sys

    for args, line in (
        (["--threshold", "2"], "error: option: --threshold: give a finite number from 0 to 1 (got 2)"),
        (["--shadow-rate", "nan"], "error: option: --shadow-rate: give a finite number from 0 to 1 (got nan)"),
        (["--timeout", "-3"], "error: option: --timeout: give a finite number above 0 (got -3)"),
        (["--timeout", "inf"], "error: option: --timeout: give a finite number above 0 (got inf)"),
        (["--mode", "[bold]x"], "error: option: --mode: Input should be 'student', 'cascade', 'shadow' or 'canary' (got '[bold]x')"),
    ):
        r = subprocess.run([sys.executable, "-m", "graduate", "serve", str(trained_copy), *args], capture_output=True, text=True, timeout=300, env=cli_env(**ENV))
        assert r.returncode == 2 and r.stderr.strip().splitlines() == [line], (args, r.stderr)
    r = subprocess.run([sys.executable, "-m", "graduate", "serve-plan", str(trained_copy), "--target", "2"], capture_output=True, text=True, timeout=300, env=cli_env(**ENV))
    assert r.returncode == 2 and r.stderr.strip().splitlines() == ["error: option: --target: give a finite number above 0 and at most 1 (got 2)"], r.stderr
