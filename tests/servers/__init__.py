"""Real servers that tests and benchmarks start as subprocesses on 127.0.0.1.

    with fake_openai_server(p429=0.1, latency=0.05) as server:
        ...  # point teacher.base_url at server.base_url
        server.stats()["paid_twice"]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx

FAKE_OPENAI = Path(__file__).with_name("fake_openai.py")
FAKE_BATCH = Path(__file__).with_name("fake_batch.py")


@dataclass
class FakeOpenAI:
    url: str
    process: subprocess.Popen
    log: Path

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def stats(self, detail: bool = False) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/stats", params={"detail": detail}, timeout=60)
        response.raise_for_status()
        return response.json()


@dataclass
class FakeBatch(FakeOpenAI):
    def advance(self, seconds: float) -> None:
        """Move the fake's virtual clock (batches progress on it)."""
        httpx.post(f"{self.url}/_clock", json={"advance": seconds}, timeout=60).raise_for_status()


@contextmanager
def fake_batch_server(startup_s: float = 60.0, **options: Any) -> Iterator[FakeBatch]:
    """Start tests/servers/fake_batch.py (files + batches) with ``options`` as flags, as below."""
    with fake_openai_server(startup_s, _script=FAKE_BATCH, **options) as server:
        yield FakeBatch(server.url, server.process, server.log)


@contextmanager
def fake_openai_server(startup_s: float = 60.0, _script: Path = FAKE_OPENAI, **options: Any) -> Iterator[FakeOpenAI]:
    """Start tests/servers/fake_openai.py with ``options`` as flags (``p429=0.1`` -> ``--p429 0.1``),
    wait until it answers, and stop it on exit."""
    args = [sys.executable, str(_script), "--port", "0"]
    for name, value in options.items():
        if value is True:
            args.append(f"--{name.replace('_', '-')}")
        elif value is not None and value is not False:
            args += [f"--{name.replace('_', '-')}", str(value)]
    with tempfile.TemporaryDirectory(prefix="fake-openai-") as tmp:
        log = Path(tmp) / "server.log"
        with log.open("w") as err:
            process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, text=True)
        try:
            server = FakeOpenAI(_read_url(process, log), process, log)
            _wait_until_up(server, startup_s)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout:
                process.stdout.close()


def _read_url(process: subprocess.Popen, log: Path) -> str:
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("listening on "):
        process.wait(timeout=10)
        raise RuntimeError(f"fake OpenAI server did not start ({line!r}):\n{log.read_text()}")
    return line.removeprefix("listening on ").strip()


def _wait_until_up(server: FakeOpenAI, startup_s: float) -> None:
    deadline = time.monotonic() + startup_s
    while True:
        try:
            server.stats()
            return
        except httpx.HTTPError:
            if server.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"fake OpenAI server is not answering:\n{server.log.read_text()}") from None
            time.sleep(0.05)
