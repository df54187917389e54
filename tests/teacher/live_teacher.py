"""Helpers for the live-teacher tests: the tiny project pointed at a real fake-OpenAI server on 127.0.0.1."""

from __future__ import annotations

import csv
import re
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from graduate.pipeline.project import Project
from graduate.store.schema import teacher_calls

TEXT_COLUMN = "comment_text"


def point_teacher(project_dir: Path, base_url: str, **teacher: Any) -> Path:
    """Rewrite the copy's graduate.yaml: teacher.base_url and any other teacher fields."""
    path = project_dir / "graduate.yaml"
    spec = yaml.safe_load(path.read_text())
    spec["teacher"].update(base_url=base_url, **teacher)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return project_dir


def comments(project_dir: Path, n: int) -> list[str]:
    """The first ``n`` real comments of the tiny project (all distinct)."""
    with (project_dir / "comments.csv").open(newline="", encoding="utf-8") as f:
        return [row[TEXT_COLUMN] for row, _ in zip(csv.DictReader(f), range(n))]


def live_calls(project_dir: Path) -> list[Any]:
    """Every live row of the project's call log."""
    engine = Project.load(project_dir).engine
    with engine.connect() as conn:
        rows = conn.execute(select(teacher_calls).where(teacher_calls.c.source == "live")).all()
    engine.dispose()
    return rows


def run_label(project_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The real CLI in a subprocess, on the tiny project's comments.csv."""
    return subprocess.run(label_command(project_dir, *args), capture_output=True, text=True, timeout=120, env=env or cli_env())


def label_command(project_dir: Path, *args: str) -> list[str]:
    input_csv = project_dir / "comments.csv"
    return [sys.executable, "-m", "graduate", "label", str(project_dir), "--input", str(input_csv), "--id-column", "id", *args]


def as_at_a_terminal() -> None:
    """A child's SIGINT as a terminal gives it (``preexec_fn``): a shell that starts a job in the
    background, as CI may run the suite, leaves SIGINT ignored, and every child inherits that."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


# A line of Ray's C++ core: "[2026-12-01 14:29:09,073 I 14498 14498] logging.cc:303: ..."
RAY_CORE_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d [\d:,]+ [TDIWEF] \d+ \d+\]", re.MULTILINE)


def cli_env(**extra: str) -> dict[str, str]:
    # Wide output, so one message stays on one line however the runner's terminal is sized.
    return {**os.environ, "COLUMNS": "400", "OPENAI_API_KEY": "sk-test", **extra}


def wait_for_requests(server: Any, client: subprocess.Popen, requests: int, timeout_s: float) -> None:
    """Wait until the fake server has received ``requests`` requests (answered or not) from ``client``."""
    import time

    deadline = time.monotonic() + timeout_s
    while server.stats()["requests"] < requests:
        assert client.poll() is None, client.communicate()
        assert time.monotonic() < deadline, "no request reached the server"
        time.sleep(0.2)


def interrupt_after(
    command: list[str], server: Any, requests: int, *, wait_s: float, exit_s: float, before: Any = None
) -> tuple[subprocess.Popen, str, str]:
    """Run ``command`` as at a terminal, send it SIGINT once the fake server has received ``requests``
    requests (after calling ``before()``, to look at the store mid-run), and wait for it to exit: the
    process, its stdout and its stderr. A child still running at the end is killed."""
    import signal

    client = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(), preexec_fn=as_at_a_terminal)
    try:
        wait_for_requests(server, client, requests, timeout_s=wait_s)
        if before is not None:
            before()
        client.send_signal(signal.SIGINT)
        out, err = client.communicate(timeout=exit_s)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    return client, out, err


def sigkill_after(server: Any, client: subprocess.Popen, answered: int, timeout_s: float = 120) -> None:
    """SIGKILL ``client`` once the fake server has answered ``answered`` requests successfully."""
    import signal
    import time

    deadline = time.monotonic() + timeout_s
    while server.stats()["ok"] < answered:
        assert client.poll() is None, f"the client ended before the kill: {client.communicate()[1]}"
        assert time.monotonic() < deadline, "the client made no progress"
        time.sleep(0.02)
    client.send_signal(signal.SIGKILL)
    client.communicate()
    assert client.returncode == -signal.SIGKILL
