"""One writer per project: a second `graduate run` while another process works on the project stops
at once, naming the other, and writes nothing; the lock goes with its process, also on kill -9."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

from sqlalchemy import func, select

from graduate.pipeline.project import Project
from graduate.store.schema import runs, teacher_calls
from teacher.live_teacher import cli_env

HOLD = """
import sys, time
from graduate.pipeline.project import Project
with Project.load(sys.argv[1]).exclusive("graduate run"):
    print("held", flush=True)
    time.sleep(600)
"""


def _count(project: Path, table) -> int:
    with Project.load(project).engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def test_a_second_run_stops_at_once_naming_the_first_and_the_lock_dies_with_its_process(tiny_project):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tiny_project)], stdout=subprocess.PIPE, text=True, env=cli_env())
    try:
        assert holder.stdout.readline().strip() == "held"
        second = subprocess.run([sys.executable, "-m", "graduate", "run", str(tiny_project)], capture_output=True, text=True, env=cli_env(), timeout=120)
        out = second.stdout + second.stderr
        assert second.returncode == 2, out
        assert f"another graduate process is working on this project (process {holder.pid}, graduate run, since " in " ".join(out.split())
        assert "Traceback" not in out
        assert _count(tiny_project, teacher_calls) == 0 and _count(tiny_project, runs) == 0  # it wrote nothing
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    # kill -9 left no stale lock behind: the next run works
    again = subprocess.run([sys.executable, "-m", "graduate", "run", str(tiny_project)], capture_output=True, text=True, env=cli_env(), timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _count(tiny_project, teacher_calls) > 0


def test_the_lock_is_reentrant_and_shared_by_the_threads_of_its_process(tiny_project):
    project = Project.load(tiny_project)
    seen: list[str] = []
    with project.exclusive("outer"):
        with project.exclusive("inner"):
            seen.append("nested")

        def in_thread() -> None:
            with project.exclusive("thread"):
                seen.append("thread")

        worker = threading.Thread(target=in_thread)
        worker.start()
        worker.join(timeout=30)
    assert seen == ["nested", "thread"]
    # released: another process can take it now
    took = subprocess.run([sys.executable, "-c", HOLD.replace("time.sleep(600)", "pass"), str(tiny_project)], capture_output=True, text=True, env=cli_env(), timeout=120)
    assert took.returncode == 0 and took.stdout.strip() == "held", took.stderr
