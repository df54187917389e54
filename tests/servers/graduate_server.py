"""Run graduate's own servers for tests and benchmarks, on 127.0.0.1 only.

- ``ThreadServer(app)``: uvicorn in a thread of this process (fast to start; no signal handling).
- ``serve_process(project, ...)``: ``python -m graduate serve`` as a real subprocess, for SIGTERM
  and CLI behaviour; ``stop()`` sends SIGTERM and waits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import csv

import httpx
import yaml

KEY = "test-key-1"
AUTH = {"Authorization": f"Bearer {KEY}"}


class ThreadServer:
    def __init__(self, app: Any, *, graceful_s: int = 5):
        import uvicorn

        from graduate.serve.server import bind_socket

        self.app = app
        self.sock = bind_socket("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=graceful_s)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def __enter__(self) -> "ThreadServer":
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start (see the log above)")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(60)
        self.sock.close()


@dataclass
class ServeProcess:
    url: str
    process: subprocess.Popen
    output: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        rc = self.process.wait(timeout=timeout)
        if self._reader is not None:
            self._reader.join(60)
        return rc

    @property
    def text(self) -> str:
        return "".join(self.output)


def cli_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "COLUMNS": "400", "HF_HUB_OFFLINE": "1", **extra}


@contextmanager
def serve_process(project: Path, *args: str, env: dict[str, str] | None = None, startup_s: float = 180) -> Iterator[ServeProcess]:
    """``graduate serve PROJECT --port 0 ARGS`` until ready (``/readyz`` 200); killed on exit if still running."""
    cmd = [sys.executable, "-m", "graduate", "serve", str(project), "--port", "0", *args]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env or cli_env())
    server = ServeProcess("", process)
    assert process.stdout is not None
    url_ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            server.output.append(line)
            if line.startswith("listening on "):
                server.url = line.removeprefix("listening on ").strip()
                url_ready.set()

    server._reader = threading.Thread(target=read, daemon=True)
    server._reader.start()
    try:
        deadline = time.monotonic() + startup_s
        while not url_ready.wait(0.05):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"graduate serve did not start:\n{server.text}")
        while True:
            try:
                if httpx.get(f"{server.url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"graduate serve is not ready:\n{server.text}")
            time.sleep(0.05)
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        # The reader thread owns stdout and ends at EOF; closing the pipe under it would block.
        server._reader.join(60)


def set_teacher(project_dir: Path, **teacher: Any) -> None:
    path = project_dir / "graduate.yaml"
    spec = yaml.safe_load(path.read_text())
    spec["teacher"].update(teacher)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))


def options(project: Any, **overrides: Any) -> Any:
    """The project's serve section with test-friendly defaults: student in a thread, quick flushes."""
    from graduate.spec import ServeSpec

    base = {"predict_workers": 0, "traffic_flush_s": 0.05, **overrides}
    return ServeSpec.model_validate({**project.spec.serve.model_dump(), **base})


def comments(project_dir: Path, n: int | None = None) -> list[str]:
    with (project_dir / "comments.csv").open(newline="", encoding="utf-8") as f:
        rows = [r["comment_text"] for r in csv.DictReader(f)]
    return rows if n is None else rows[:n]


def prompt_messages(project: Any, text: str) -> list[dict[str, str]]:
    from graduate.teacher.prompt import render_messages

    return render_messages(project.spec.teacher, text)
