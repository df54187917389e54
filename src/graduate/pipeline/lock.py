"""One writer at a time per project: the steps that train, build or evaluate hold the project's work
lock (``.graduate/work.lock``, an OS file lock through ``filelock``), so a second ``graduate run``
started on the same project while one is working stops at once with a line naming the other
(process id, step, since when) instead of racing it for the same runs and files. The operating
system lets go of the lock when its process ends, also on ``kill -9``: no stale lock to delete.

Within one process the lock is re-entrant and shared by threads (``graduate run`` trains students
while holding it). Guards one machine's processes: a project whose store is a shared PostgreSQL
used from several machines needs a lock of its own there.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Iterator

from graduate.errors import BusyError

LOCK_NAME = "work.lock"
HOLDER_NAME = "work.lock.json"  # who holds it: read only to name them in the error


class WorkLock:
    def __init__(self, workdir: Path):
        from filelock import FileLock

        self.workdir = workdir
        self._lock = FileLock(workdir / LOCK_NAME, thread_local=False)

    @contextlib.contextmanager
    def hold(self, what: str) -> Iterator[None]:
        from filelock import Timeout

        first = not self._lock.is_locked
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise BusyError(f"another graduate process is working on this project ({self._holder()}); wait for it to finish, then run this again") from None
        try:
            if first:
                with contextlib.suppress(OSError):
                    (self.workdir / HOLDER_NAME).write_text(json.dumps({"pid": os.getpid(), "step": what, "since": time.strftime("%Y-%m-%d %H:%M:%S")}))
            yield
        finally:
            self._lock.release()

    def _holder(self) -> str:
        try:
            h = json.loads((self.workdir / HOLDER_NAME).read_text())
            return f"process {int(h['pid'])}, {h['step']}, since {h['since']}; lock {self.workdir / LOCK_NAME}"
        except (OSError, ValueError, KeyError, TypeError):
            return f"lock {self.workdir / LOCK_NAME}"
