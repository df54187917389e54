"""llama.cpp's OpenAI-compatible server (llama-cpp-python) as a child process on 127.0.0.1.

``LocalServer`` starts it, waits until ``/v1/models`` answers, restarts it if it dies while in use
(the client's retries then reach the new one, so nothing in flight is lost), and stops it with
SIGTERM, then SIGKILL. It is a context manager; whatever happens, an interpreter exit stops it too.

Throughput notes (llama-cpp-python 0.3.36): the server evaluates one request at a time (a global
lock; it has no parallel slots), and between requests it keeps the KV cache of the last prompt, so
the prompt prefix that every item shares (system message and instructions) is evaluated once and
only each item's own tokens are new. Requests queued by the client's concurrency therefore run back
to back with no idle time, and threads (``n_threads``) are the only parallelism on a CPU.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import IO

from graduate.errors import LocalTeacherError
from graduate.hardware import cpu_count
from graduate.store.runs import process_gone

SETTINGS_PREFIX = "graduate-llama-"


def remove_stale_settings(directory: Path | str | None = None) -> int:
    """Remove the server settings files (``graduate-llama-*.json`` in the temp folder) that a
    process killed with kill -9 left behind (no cleanup runs then): those whose ``parent_pid`` is
    gone. A file of a live process, or one still being written, is kept. Returns how many went."""
    removed = 0
    for path in Path(directory or tempfile.gettempdir()).glob(f"{SETTINGS_PREFIX}*.json"):
        try:
            settings = json.loads(path.read_text(encoding="utf-8"))
            pid = int(settings["parent_pid"])
        except (OSError, ValueError, TypeError, KeyError):
            continue  # being written, or not one of ours
        if process_gone(pid):
            path.unlink(missing_ok=True)
            removed += 1
    return removed

HOST = "127.0.0.1"
LOG_TAIL_LINES = 12
POLL_S = 0.2
STOP_GRACE_S = 10.0
LISTEN_BACKLOG = 2048  # uvicorn's


def require_llama_cpp() -> None:
    """A clear error when the `local` extra (llama-cpp-python's server) is not installed."""
    missing = [m for m in ("llama_cpp", "uvicorn", "sse_starlette", "starlette_context", "pydantic_settings") if importlib.util.find_spec(m) is None]
    if missing:
        raise LocalTeacherError(
            f"the local teacher needs llama-cpp-python's server ({missing[0]} is not installed); "
            "run `pip install 'graduate[local]'` (it compiles llama.cpp: 4-5 minutes)"
        )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def listen_on(port: int | None) -> socket.socket:
    """A socket listening on 127.0.0.1:port (None: a free port), for the server to take over.

    Bound here and passed to the server process, not chosen here and bound there: between the two
    another process could take the port (the server then failed to start, or a port's new owner
    answered our readiness check). Held while the server runs, it also keeps the port across a
    restart, and connections made meanwhile wait in its queue. SO_REUSEADDR as uvicorn binds, so a
    port that only has connections in TIME_WAIT counts as free."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port or 0))
        sock.listen(LISTEN_BACKLOG)
    except OSError as exc:
        sock.close()
        raise LocalTeacherError(
            f"port {port} on {HOST} is in use ({exc.strerror}); pick another with teacher.local.port "
            "(or --port), or leave it unset for a free one"
        ) from None
    return sock


def _reason(path: Path | None) -> str:
    """The line of a server log that says why it stopped: llama.cpp's own error if there is one
    (e.g. "error loading model: tensor ... data is not within the file bounds"), else the last line."""
    if path is None:
        return "(no log)"
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    except OSError:
        return "(no log)"
    for line in lines:
        low = line.lower()
        if ("error" in low or "failed" in low) and not line.startswith(("File ", "Traceback", "raise ")):
            return line
    return lines[-1] if lines else "(empty log)"


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            last = deque((line.rstrip() for line in f if line.strip()), maxlen=lines)
    except OSError:
        return ""
    return " | ".join(last)


class LocalServer:
    """One llama.cpp server process for one GGUF model."""

    def __init__(
        self,
        model_path: Path | str,
        *,
        alias: str,
        port: int | None = None,
        n_ctx: int = 2048,
        threads: int | None = None,
        logits_all: bool = False,
        startup_timeout_s: float = 300.0,
        max_restarts: int = 3,
        log_path: Path | None = None,
    ):
        self.model_path = Path(model_path)
        self.alias = alias
        self.requested_port = port
        self.port: int | None = None
        self.n_ctx = n_ctx
        self.threads = threads or cpu_count()
        self.logits_all = logits_all
        self.startup_timeout_s = startup_timeout_s
        self.max_restarts = max_restarts
        self.log_path = log_path
        self.restarts = 0
        self.starts = 0
        self._proc: subprocess.Popen | None = None
        self._log: IO[bytes] | None = None
        self._settings_file: Path | None = None
        self._sock: socket.socket | None = None  # the listening socket the server process serves on
        self._lock = threading.RLock()
        # Set by stop(), cleared by start(); start() and the watcher hold _lock for seconds, so a
        # stop() sets it before it waits for _lock, and each readiness wait gives up on it.
        self._stopping = threading.Event()
        # stop() calls so far: a start() that sees the count change since it was entered was
        # stopped while it waited for _lock, before it clears _stopping (which would lose that stop).
        self._stops = 0
        self._stops_lock = threading.Lock()  # the count and the flag change together
        self._watcher: threading.Thread | None = None
        self.failure: str | None = None

    # -- public ------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        if self.port is None:
            raise LocalTeacherError("the local server is not started")
        return f"http://{HOST}:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> "LocalServer":
        """Start the server and wait until it answers; a clear error (with the server's last log
        lines) if it exits or does not answer within ``startup_timeout_s``. A ``stop()`` from
        another thread while it runs (e.g. a run cancelled while its teacher starts) wins: this
        raises and leaves no server process or listening socket behind."""
        stops = self._stops
        with self._lock:
            with self._stops_lock:
                if self._stops != stops:  # stopped while waiting for the lock (a restart held it)
                    raise LocalTeacherError(f"the llama.cpp server for {self.model_path.name} was stopped while starting")
                self._stopping.clear()  # a later stop() sets it again: the readiness wait gives up
            if self.running():
                return self
            require_llama_cpp()
            self._close_socket()  # of an earlier start whose server has died
            self._sock = listen_on(self.requested_port)
            try:  # whatever fails from here (the log folder, the spawn, the wait) frees the port
                self.port = int(self._sock.getsockname()[1])
                if self.log_path is None:
                    from graduate.models.gguf import cache_dir

                    logs = cache_dir() / "logs"
                    logs.mkdir(parents=True, exist_ok=True)
                    self.log_path = logs / f"llama-server-{self.port}.log"
                self.failure = None
                self._spawn(fresh_log=True)
                self._wait_ready()
            except BaseException:
                self._terminate()
                raise
            atexit.register(self.stop)
            self._watcher = threading.Thread(target=self._watch, name=f"llama-server-{self.port}", daemon=True)
            self._watcher.start()
            return self

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period; idempotent. A ``start()`` in progress in
        another thread gives up (it raises); one entered after this call began may take the lock
        first and start its server, which is then stopped here (and its watcher does not restart it)."""
        with self._stops_lock:
            self._stops += 1
            self._stopping.set()
        with self._lock:
            self._stopping.set()  # again: a start() that got the lock first cleared it
            self._terminate()
        watcher, self._watcher = self._watcher, None
        if watcher is not None and watcher is not threading.current_thread():
            watcher.join(timeout=STOP_GRACE_S + 5)
        atexit.unregister(self.stop)

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self) -> str:
        return _tail(self.log_path) if self.log_path else ""

    # -- internals ---------------------------------------------------------------------------
    def _settings(self) -> dict:
        return {
            # The server stops when this process is gone, also after kill -9 (no atexit runs then).
            "parent_pid": os.getpid(),
            "listen_fd": self._sock.fileno() if self._sock is not None else None,
            "server": {"host": HOST, "port": self.port, "interrupt_requests": False},
            "model": {
                "model": str(self.model_path),
                "model_alias": self.alias,
                "n_ctx": self.n_ctx,
                "n_threads": self.threads,
                "n_threads_batch": self.threads,
                # Logits of every prompt token are needed only for logprobs; they cost time and
                # n_ctx x vocabulary floats of memory.
                "logits_all": self.logits_all,
                "verbose": True,
            },
        }

    def _spawn(self, *, fresh_log: bool) -> None:
        assert self.log_path is not None
        if self._log is not None:
            self._log.close()
        self._log = self.log_path.open("wb" if fresh_log else "ab")
        self._log.write(f"--- graduate: starting llama.cpp server on {HOST}:{self.port} with {self.model_path}\n".encode())
        self._log.flush()
        if self._settings_file is None:
            remove_stale_settings()
            fd, name = tempfile.mkstemp(prefix=SETTINGS_PREFIX, suffix=".json")
            os.close(fd)
            self._settings_file = Path(name)
        self._settings_file.write_text(json.dumps(self._settings()))
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # llama.cpp's OpenMP threads spin at every barrier by default; on a machine whose cores are
        # busy with anything else that made each answer ~8x slower here (9 s instead of 1.1 s for
        # the 0.5B model with 2 threads and a load of 5). Sleeping threads cost nothing when idle.
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "graduate.teacher.llama_server_main", str(self._settings_file)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            # Its own process group: a Ctrl-C in the terminal reaches us, and we stop it in order.
            start_new_session=True,
            pass_fds=(self._sock.fileno(),) if self._sock is not None else (),
        )
        self.starts += 1

    def _wait_ready(self) -> None:
        """Until the server answers; gives up as soon as ``stop()`` is called, which waits for the
        lock held meanwhile (a restart's wait would otherwise hold a stop up to startup_timeout_s)."""
        import httpx

        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout_s
        url = f"{self.base_url}/models"
        while True:
            if self._stopping.is_set():
                raise LocalTeacherError(f"the llama.cpp server for {self.model_path.name} was stopped while starting")
            code = self._proc.poll()
            if code is not None:
                raise LocalTeacherError(
                    f"the llama.cpp server for {self.model_path.name} exited with code {code} while starting: "
                    f"{_reason(self.log_path)} (full log: {self.log_path})"
                )
            try:
                r = httpx.get(url, timeout=2.0)
                if r.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise LocalTeacherError(
                    f"the llama.cpp server for {self.model_path.name} did not answer {url} within "
                    f"{self.startup_timeout_s:.0f} s; raise teacher.local.startup_timeout_s. Its log ends: {self.log_tail() or '(empty)'}"
                )
            self._stopping.wait(POLL_S)

    def _watch(self) -> None:
        """Restart the server when it dies unexpectedly, at most ``max_restarts`` times."""
        while not self._stopping.is_set():
            proc = self._proc
            if proc is None:
                return
            try:
                proc.wait(timeout=POLL_S * 2)
            except subprocess.TimeoutExpired:
                continue
            with self._lock:
                if self._stopping.is_set() or self._proc is not proc:
                    continue
                if self.restarts >= self.max_restarts:
                    self.failure = (
                        f"the llama.cpp server died (code {proc.returncode}) and was restarted {self.restarts} times already: "
                        f"{_reason(self.log_path)} (full log: {self.log_path})"
                    )
                    self._close_socket()  # connections are refused at once, not queued for a server that will not come
                    return
                self.restarts += 1
                try:
                    self._spawn(fresh_log=False)
                    self._wait_ready()
                except (LocalTeacherError, OSError) as exc:  # OSError: the spawn itself (no memory, no file handles)
                    if not self._stopping.is_set():  # stopped during the restart: no failure
                        self.failure = str(exc) if isinstance(exc, LocalTeacherError) else f"the llama.cpp server could not be restarted: {exc}"
                    self._terminate()
                    return

    def _terminate(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            try:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            except ProcessLookupError:
                pass
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._settings_file is not None:
            self._settings_file.unlink(missing_ok=True)
            self._settings_file = None
        self._close_socket()

    def _close_socket(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
