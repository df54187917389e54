"""One writer per store across machines: two project folders (as on two machines, each with its own
file lock) on one PostgreSQL store. While one works, the other stops at once with a line naming
it (host, pid, step, address) and writes nothing; PostgreSQL lets go of the lock when the holder's
connection ends, also on kill -9."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from graduate.errors import BusyError
from graduate.pipeline.project import Project
from graduate.store.schema import runs, teacher_calls
from teacher.live_teacher import cli_env

HOLD = """
import sys, time
from graduate.pipeline.project import Project
with Project.load(sys.argv[1]).exclusive("graduate run"):
    print("held", flush=True)
    time.sleep(120)
"""


@pytest.mark.postgres
def test_a_second_machine_on_the_same_postgres_store_stops_at_once_naming_the_first(tiny_project: Path, tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # the test server trusts 127.0.0.1, so it ignores the password; messages must not show it
    postgres_url = postgres_url.replace("://graduate@", "://graduate:s3cret@") + "?connect_timeout=10"
    monkeypatch.setenv("GRADUATE_STORE_URL", postgres_url)
    other = tmp_path / "machine-b"
    shutil.copytree(tiny_project, other, ignore=shutil.ignore_patterns(".graduate"))
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tiny_project)], stdout=subprocess.PIPE, text=True, env=cli_env())
    proj = Project.load(other)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(BusyError) as err:
            with proj.exclusive("training tfidf-logreg"):
                pass
        message = str(err.value)
        assert f"working on this project's store (graduate pid {holder.pid} on {socket.gethostname()}: graduate run from 127.0.0.1, since " in message, message
        assert "server backend pid " in message and "s3cret" not in message and "graduate:***@127.0.0.1" in message, message

        # threads of one process that all start while another machine holds the store: none runs
        ran: list[str] = []
        refused: list[str] = []

        def try_step(i: int) -> None:
            try:
                with proj.exclusive(f"step {i}"):
                    ran.append(f"step {i}")
            except BusyError:
                refused.append(f"step {i}")

        for _ in range(5):
            threads = [threading.Thread(target=try_step, args=(i,)) for i in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=60)
        assert ran == [] and len(refused) == 20

        second = subprocess.run([sys.executable, "-m", "graduate", "run", str(other)], capture_output=True, text=True, env=cli_env(), timeout=120)
        out = " ".join((second.stdout + second.stderr).split())
        assert second.returncode == 2 and f"graduate pid {holder.pid} on {socket.gethostname()}: graduate run" in out and "Traceback" not in out, out
        with proj.engine.connect() as conn:  # it wrote nothing
            assert conn.execute(select(func.count()).select_from(teacher_calls)).scalar() == 0
            assert conn.execute(select(func.count()).select_from(runs)).scalar() == 0
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)

    # kill -9: the server ends the holder's session and its lock with it (at once, or within moments)
    deadline = time.monotonic() + 30
    while True:
        try:
            with proj.exclusive("graduate run"):
                with proj.exclusive("nested"):  # re-entrant within the process
                    pass
            break
        except BusyError:
            assert time.monotonic() < deadline, "the killed holder's lock was never let go"
            time.sleep(0.2)
    # and given back on leaving: another process takes it at once
    took = subprocess.run([sys.executable, "-c", HOLD.replace("time.sleep(120)", "pass"), str(tiny_project)], capture_output=True, text=True, env=cli_env(), timeout=120)
    assert took.returncode == 0 and took.stdout.strip() == "held", took.stderr
    proj.engine.dispose()
