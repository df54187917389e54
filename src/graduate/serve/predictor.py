"""Run the student off the event loop, batching requests that arrive while it is busy.

Requests queue their texts; one dispatcher per worker takes everything queued (up to
``max_items`` texts), runs one ``predict_proba`` and hands each request its rows. A batch forms only
from requests that would have waited anyway, so it adds no latency.

With ``workers > 0`` the student runs in that many spawned processes, each loading it once, so
prediction uses other cores and the event loop keeps answering (429s, health checks) while the
student works. Each worker is one socket pair carrying length-prefixed pickles: the event loop
writes and reads through asyncio streams, so a batch of any size is sent and read whole however
the kernel splits it (a ``multiprocessing`` pipe read from a readiness callback could be read in
part, leaving the pipe out of step for every later request). A worker whose stream breaks or
goes out of step is killed and replaced; its requests fail with 503 and the next ones are served.
No helper threads in the server process: a ``ProcessPoolExecutor``'s manager and feeder threads
cost about a millisecond of GIL hand-offs per call, more than a one-text prediction. With
``workers == 0`` the student runs in one thread of the server process.
"""

from __future__ import annotations

import asyncio
import pickle
import socket
import struct
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from graduate.errors import StudentError
from graduate.students.base import Student

STARTUP_TIMEOUT_S = 300.0


def _exit_with_parent(parent: int, every_s: float = 0.5) -> None:
    import os
    import time

    # Ignoring SIGTERM (below) must not leave an orphan when the server itself is killed.
    while os.getppid() == parent:
        time.sleep(every_s)
    os._exit(0)


_HEADER = struct.Struct("!Q")


def _frame(obj: Any) -> bytes:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(data)) + data


def _worker_main(sock: socket.socket, directory: str, parent: int) -> None:
    """A prediction process: load the student, then answer batches until the socket closes."""
    import signal
    import threading

    # The server handles SIGINT/SIGTERM and stops the workers after in-flight requests; a signal
    # sent to the whole process group must not kill predictions half-way.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True, name="graduate-parent-watch").start()
    from graduate.students.registry import load_student

    sock.setblocking(True)
    reader = sock.makefile("rb")
    try:
        student = load_student(Path(directory))
    except Exception as exc:  # noqa: BLE001 - reported to the server, which fails to start with it
        sock.sendall(_frame(("error", f"{type(exc).__name__}: {exc}")))
        return
    sock.sendall(_frame(("ready", list(student.labels))))
    while True:
        header = reader.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return  # the server closed the socket
        (size,) = _HEADER.unpack(header)
        data = reader.read(size)
        if len(data) < size:
            return
        try:
            texts = pickle.loads(data)
            reply = ("ok", student.predict_proba(texts))
        except Exception as exc:  # noqa: BLE001 - one bad batch fails its requests, not the worker
            reply = ("error", f"{type(exc).__name__}: {exc}")
        try:
            sock.sendall(_frame(reply))
        except OSError:
            return


class _Worker:
    def __init__(self, directory: Path):
        import multiprocessing
        import os

        ctx = multiprocessing.get_context("spawn")
        self.sock, child = socket.socketpair()
        self.process = ctx.Process(target=_worker_main, args=(child, str(directory), os.getpid()), daemon=True, name="graduate-student")
        self.process.start()
        child.close()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        # Set when a message was cut short or garbled: the stream is out of step for good.
        self.broken = False

    async def _streams(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_unix_connection(sock=self.sock)
        return self._reader, self._writer

    async def request(self, texts: list[str]) -> tuple[str, Any]:
        """Send a batch and read the reply, both whole; any failure breaks the worker for good."""
        return await self._guarded(self._exchange(texts))

    async def receive(self) -> tuple[str, Any]:
        """The worker's next message (its start-up report)."""
        return await self._guarded(self._read())

    async def _exchange(self, texts: list[str]) -> tuple[str, Any]:
        _, writer = await self._streams()
        writer.write(_frame(texts))
        await writer.drain()
        return await self._read()

    async def _guarded(self, work: Any) -> tuple[str, Any]:
        # Cut short (an error, or cancelled mid-message): the stream is out of step for good.
        try:
            return await work
        except BaseException:
            self.broken = True
            raise

    async def _read(self) -> tuple[str, Any]:
        reader, _ = await self._streams()
        try:
            (size,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
            message = pickle.loads(await reader.readexactly(size))
        except (asyncio.IncompleteReadError, ConnectionError, OSError, pickle.UnpicklingError, EOFError) as exc:
            self.broken = True
            raise StudentError(f"a prediction worker died ({type(exc).__name__}); it is being restarted, retry the request") from None
        if not (isinstance(message, tuple) and len(message) == 2):
            self.broken = True
            raise StudentError("a prediction worker sent a garbled reply; it is being restarted, retry the request")
        return message

    def close(self, timeout: float = 10.0) -> None:
        """Stop the worker (from any thread): it reads EOF and exits, or is killed after ``timeout``."""
        try:
            # shutdown, not close: the event loop's transport may still own the descriptor.
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout)

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()


class Predictor:
    def __init__(self, student: Student | None, directory: Path | None, *, workers: int = 1, max_items: int = 1024, labels: list[str] | None = None):
        if workers > 0 and directory is None:
            raise StudentError("prediction in worker processes needs the student's saved directory")
        if workers == 0 and student is None:
            raise StudentError("prediction in the server process needs the loaded student")
        self.student = student
        self.directory = directory
        self.workers = workers
        self.max_items = max_items
        self.labels = list(labels or (student.labels if student is not None else []))
        self._queue: deque[tuple[list[str], asyncio.Future]] = deque()
        self._free: list[Any] = []
        self._active = 0
        self._slots = max(1, workers)
        self._thread: ThreadPoolExecutor | None = None
        self._procs: list[_Worker] = []
        self.ready = False
        self.batches = 0
        self.restarts = 0

    async def _started(self, worker: _Worker) -> _Worker:
        try:
            kind, value = await asyncio.wait_for(worker.receive(), STARTUP_TIMEOUT_S)
        except StudentError:
            # not "retry the request": no request was sent, the worker stopped while it loaded
            code = worker.process.exitcode  # None when it is not reaped yet
            raise StudentError(f"a prediction worker stopped while it loaded the student from {self.directory}" + (f" (exit code {code})" if code is not None else "")) from None
        except TimeoutError:
            raise StudentError(f"a prediction worker did not load the student from {self.directory} within {STARTUP_TIMEOUT_S:g} s") from None
        if kind != "ready":
            raise StudentError(f"a prediction worker could not load the student from {self.directory}: {value}")
        self.labels = value
        return worker

    async def start(self) -> None:
        """Start the thread or the workers; on any failure everything started is stopped first."""
        try:
            if self.workers == 0:
                self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="graduate-student")
                self._free = [None]
                await asyncio.get_running_loop().run_in_executor(self._thread, self.student.predict_proba, ["warm up"])  # type: ignore[union-attr]
            else:
                assert self.directory is not None
                for _ in range(self.workers):
                    self._procs.append(_Worker(self.directory))  # kept at once: a later one failing to spawn stops the earlier
                waits = [asyncio.ensure_future(self._started(w)) for w in self._procs]
                try:
                    # the first failure ends the wait: the others are stopped, not waited for
                    await asyncio.wait(waits, return_when=asyncio.FIRST_EXCEPTION)
                finally:
                    for w in waits:
                        w.cancel()
                    outcome = await asyncio.gather(*waits, return_exceptions=True)
                # the failure itself, not the cancellation of the waits it ended
                failed = next((o for o in outcome if isinstance(o, Exception)), None) or next((o for o in outcome if isinstance(o, BaseException)), None)
                if failed is not None:
                    raise failed
                self._free = list(outcome)
        except BaseException:
            for w in self._procs:  # they served nothing: no request to finish
                w.kill()
            # in a thread, shielded: stopping them must neither stall the loop nor be cut short by a cancel
            await asyncio.shield(asyncio.to_thread(self.close))
            raise
        self.ready = True

    async def _run(self, slot: Any, texts: list[str]) -> np.ndarray:
        if slot is None:
            assert self._thread is not None and self.student is not None
            return await asyncio.get_running_loop().run_in_executor(self._thread, self.student.predict_proba, texts)
        kind, value = await slot.request(texts)
        if kind != "ok":
            raise StudentError(f"the student failed on a batch: {value}")
        return value

    async def _replace(self, dead: _Worker) -> None:
        self.restarts += 1
        await asyncio.to_thread(dead.close, 1.0)
        assert self.directory is not None
        fresh = _Worker(self.directory)
        self._procs = [w for w in self._procs if w is not dead] + [fresh]
        try:
            self._free.append(await self._started(fresh))
        except Exception:  # noqa: BLE001 - no worker to replace it; readiness shows the loss
            self._procs.remove(fresh)
            await asyncio.to_thread(fresh.close, 1.0)
        self._kick()

    async def predict(self, texts: Sequence[str]) -> np.ndarray:
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._queue.append((list(texts), fut))
        self._kick()
        return await fut

    def _kick(self) -> None:
        loop = asyncio.get_running_loop()
        while self._free and self._queue:
            slot = self._free.pop()
            self._active += 1
            loop.create_task(self._drain(slot))

    def _take(self) -> list[tuple[list[str], asyncio.Future]]:
        batch: list[tuple[list[str], asyncio.Future]] = []
        n = 0
        while self._queue and (not batch or n + len(self._queue[0][0]) <= self.max_items):
            texts, fut = self._queue.popleft()
            if fut.done():  # the caller gave up (timeout, disconnect)
                continue
            batch.append((texts, fut))
            n += len(texts)
        return batch

    async def _drain(self, slot: Any) -> None:
        keep = True
        try:
            while self._queue:
                batch = self._take()
                if not batch:
                    continue
                self.batches += 1
                try:
                    probs = await self._run(slot, [t for texts, _ in batch for t in texts])
                except Exception as exc:  # noqa: BLE001 - handed to each waiting request
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    if slot is not None and (slot.broken or not slot.process.is_alive()):
                        keep = False
                        slot.kill()
                        asyncio.get_running_loop().create_task(self._replace(slot))
                        return
                    continue
                start = 0
                for texts, fut in batch:
                    if not fut.done():
                        fut.set_result(probs[start : start + len(texts)])
                    start += len(texts)
        finally:
            self._active -= 1
            if keep:
                self._free.append(slot)

    @property
    def alive(self) -> bool:
        return self.ready and (self.workers == 0 or any(w.process.is_alive() for w in self._procs))

    def close(self) -> None:
        self.ready = False
        if self._thread is not None:
            self._thread.shutdown(wait=True)
        for w in self._procs:
            w.close()
