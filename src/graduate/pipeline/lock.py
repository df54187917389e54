"""One writer at a time per project: the steps that train, build or evaluate hold the project's work
lock (``.graduate/work.lock``, an OS file lock through ``filelock``), so a second ``graduate run``
started on the same project while one is working stops at once with a line naming the other
(process id, step, since when) instead of racing it for the same runs and files. The operating
system lets go of the lock when its process ends, also on ``kill -9``: no stale lock to delete.

Within one process the lock is re-entrant and shared by threads (``graduate run`` trains students
while holding it). The file lock guards one machine's processes; a store on PostgreSQL, which
several machines may share, is also locked there (``graduate.store.advisory``: an advisory lock
that the database lets go of when the holder's connection ends), taken after the file lock and
given back before it.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Iterator

from sqlalchemy import Engine

from graduate.errors import BusyError
from graduate.store import advisory
from graduate.store.db import safe_url

LOCK_NAME = "work.lock"
HOLDER_NAME = "work.lock.json"  # who holds it: read only to name them in the error


class WorkLock:
    def __init__(self, workdir: Path, engine: Engine | None = None):
        from filelock import FileLock

        self.workdir, self.engine = workdir, engine
        self._lock = FileLock(workdir / LOCK_NAME, thread_local=False)
        self._mutex = threading.Lock()
        self._depth = 0
        self._store_lock: advisory.StoreLock | None = None

    @contextlib.contextmanager
    def hold(self, what: str) -> Iterator[None]:
        from filelock import Timeout

        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise BusyError(f"another graduate process is working on this project ({self._holder()}); wait for it to finish, then run this again") from None
        entered = False
        try:
            # The first holder in this process takes the store's lock too, all inside the mutex: no
            # other thread can get in while it is being taken, or run on after it was refused.
            with self._mutex:
                if self._depth == 0:
                    with contextlib.suppress(OSError):
                        (self.workdir / HOLDER_NAME).write_text(json.dumps({"pid": os.getpid(), "step": what, "since": time.strftime("%Y-%m-%d %H:%M:%S")}))
                    if self.engine is not None:
                        got = advisory.acquire(self.engine, what)
                        if isinstance(got, str):
                            raise BusyError(f"another graduate process is working on this project's store ({got}; {safe_url(self.engine.url)}); wait for it to finish, then run this again")
                        self._store_lock = got
                self._depth += 1
                entered = True
            yield
        finally:
            try:
                if entered:
                    with self._mutex:
                        self._depth -= 1
                        if self._depth == 0 and self._store_lock is not None:
                            lock, self._store_lock = self._store_lock, None
                            lock.release()
            finally:
                self._lock.release()

    def _holder(self) -> str:
        try:
            h = json.loads((self.workdir / HOLDER_NAME).read_text())
            return f"process {int(h['pid'])}, {h['step']}, since {h['since']}; lock {self.workdir / LOCK_NAME}"
        except (OSError, ValueError, KeyError, TypeError):
            return f"lock {self.workdir / LOCK_NAME}"
