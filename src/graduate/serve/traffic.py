"""Write traffic rows off the request path: handlers append to a buffer (microseconds), a thread
writes the buffer in batches, and ``close`` writes what is left, so a clean shutdown loses nothing.
A row whose teacher side comes later (a shadow comparison) is added at once and completed with
``update``: merged into the row while it is still buffered, else an UPDATE once the rows queued
before it are written, so a crash loses at most one flush interval of answered items.

A write that fails for a passing reason (database locked for longer than its busy timeout, server
gone) is retried with backoff; rows that still cannot be written at shutdown go to a JSON-lines
file beside the store rather than being dropped. A batch the store refuses for its content (a
value the database cannot hold) is written row by row, and only the rows refused alone go to the
spill file at once, so one bad row never stops the log nor takes the rows around it along. The
thread itself never dies of an error: it records it and goes on.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import Engine
from sqlalchemy.exc import DisconnectionError, OperationalError, TimeoutError as PoolTimeout

from graduate.errors import StoreLockedError
from graduate.privacy import Redactor, records
from graduate.store.traffic import update_traffic, write_traffic

# A write that failed for a passing reason: the store locked past its busy wait, the server gone.
_PASSING = (StoreLockedError, OperationalError, DisconnectionError, PoolTimeout)


class TrafficWriter:
    def __init__(
        self,
        engine: Engine,
        *,
        batch_size: int = 1000,
        flush_s: float = 0.2,
        spill_dir: Path | None = None,
        on_written: Callable[[int], None] | None = None,
        redactor: Redactor | None = None,
    ):
        self.engine = engine
        self.redactor = redactor  # privacy.redact: rows are redacted by the writer thread, off the request path
        self.batch_size = batch_size
        self.flush_s = flush_s
        self.spill_dir = spill_dir
        self.on_written = on_written
        self._buffer: list[dict[str, Any]] = []
        self._writing = 0  # rows taken from the buffer and not yet committed (or put back)
        self._writing_ids: frozenset[str] = frozenset()  # their request ids
        self._updates: list[tuple[str, int, dict[str, Any]]] = []  # (request id, item, columns) of rows no longer buffered
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = False
        self._thread: threading.Thread | None = None
        self.written = 0
        self.failures = 0
        self.last_error: str | None = None
        self.spilled: Path | None = None
        self.spilled_rows = 0

    # -- request path ------------------------------------------------------------------------
    def add(self, rows: list[dict[str, Any]]) -> None:
        with self._lock:
            self._buffer.extend(rows)
            full = len(self._buffer) >= self.batch_size
        if full:
            self._wake.set()

    def update(self, request_id: str, item: int, values: dict[str, Any]) -> None:
        """Fill in columns of a row added before: in the buffer while it is there (and not yet
        redacted), else by an UPDATE after every row queued before it is written."""
        with self._lock:
            for row in reversed(self._buffer):
                if row["request_id"] == request_id and row["item"] == item and "redactions" not in row:
                    row.update(values)
                    return
            self._updates.append((request_id, item, values))

    @property
    def pending(self) -> int:
        """Rows not in the store yet: buffered, or in the transaction being written."""
        return len(self._buffer) + self._writing

    def holds(self, request_id: str) -> bool:
        """Whether rows of this request are not in the store yet (buffered, or being written)."""
        with self._lock:
            return request_id in self._writing_ids or any(r.get("request_id") == request_id for r in self._buffer)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- the writer thread ---------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="graduate-traffic-writer", daemon=True)
        self._thread.start()

    def _take(self) -> list[dict[str, Any]]:
        with self._lock:
            rows, self._buffer = self._buffer[: self.batch_size], self._buffer[self.batch_size :]
            self._writing = len(rows)
            self._writing_ids = frozenset(r.get("request_id") for r in rows)
        if self.redactor is not None:  # before anything is written: the store or the spill file
            rows = [records.traffic_row(self.redactor, row) for row in rows]
        return rows

    def _put_back(self, rows: list[dict[str, Any]]) -> None:
        with self._lock:
            self._buffer[:0] = rows

    def _write(self, rows: list[dict[str, Any]]) -> bool:
        """Write a batch; False when the store is unavailable for now (the rows are put back)."""
        try:
            return self._write_batch(rows)
        finally:
            with self._lock:  # committed, put back or spilled: no longer in between
                self._writing, self._writing_ids = 0, frozenset()

    def _write_batch(self, rows: list[dict[str, Any]]) -> bool:
        try:
            write_traffic(self.engine, rows)
        except _PASSING as exc:
            self._failed(exc)
            self._put_back(rows)
            return False
        except Exception as exc:  # noqa: BLE001 - a row the store refuses for its content
            self._failed(exc)
            return self._write_each(rows)
        self._written(len(rows))
        return True

    def _write_each(self, rows: list[dict[str, Any]]) -> bool:
        for i, row in enumerate(rows):
            try:
                write_traffic(self.engine, [row])
            except _PASSING as exc:
                self._failed(exc)
                self._put_back(rows[i:])
                return False
            except Exception as exc:  # noqa: BLE001 - this row alone is refused: keep it in the spill file
                self._failed(exc)
                self._spill_rows([row])
                continue
            self._written(1)
        return True

    def _apply_updates(self) -> bool:
        """Run the queued UPDATEs; False when the store is unavailable for now (they are kept)."""
        with self._lock:
            updates, self._updates = self._updates, []
        if not updates:
            return True
        if self.redactor is not None:  # the one text column an update carries
            updates = [(rid, item, {**v, "teacher_error": self.redactor.record().text(v["teacher_error"])} if v.get("teacher_error") else v) for rid, item, v in updates]
        try:
            update_traffic(self.engine, updates)
        except _PASSING as exc:
            self._failed(exc)
            with self._lock:
                self._updates[:0] = updates
            return False
        except Exception as exc:  # noqa: BLE001 - a value the store refuses: the rows keep their NULLs
            self._failed(exc)
        return True

    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        orig = getattr(exc, "orig", None) or exc
        self.last_error = f"{type(exc).__name__}: {str(orig)[:300]}"

    def _written(self, n: int) -> None:
        self.written += n
        if self.on_written:
            self.on_written(n)

    def _run(self) -> None:
        backoff = self.flush_s
        while True:
            try:
                self._wake.wait(self.flush_s)
                self._wake.clear()
                while self._buffer:
                    rows = self._take()
                    if not self._write(rows):
                        if self._closing:
                            return
                        time.sleep(min(backoff, 5.0))
                        backoff *= 2
                        break
                    backoff = self.flush_s
                # Only once every row queued so far is in: an UPDATE must find its row.
                if not self._buffer and self._updates and not self._apply_updates():
                    if self._closing:
                        return
                    time.sleep(min(backoff, 5.0))
                    backoff *= 2
                if self._closing and not self._buffer and not self._updates:
                    return
            except Exception as exc:  # noqa: BLE001 - the log must outlive any one failure
                self._failed(exc)
                time.sleep(min(backoff, 5.0))

    def close(self, timeout: float = 30.0) -> None:
        """Write everything buffered; rows the store refuses until ``timeout`` go to a spill file."""
        self._closing = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        deadline = time.monotonic() + timeout
        while (self._buffer or self._updates) and time.monotonic() < deadline:
            if self._buffer:
                if not self._write(self._take()):
                    time.sleep(0.2)
            elif not self._apply_updates():
                time.sleep(0.2)
        if self._buffer:
            self._spill()
        if self._updates:  # rows already in a store that no longer answers: their teacher side is lost
            self.last_error = f"{len(self._updates)} teacher comparisons not written: {self.last_error}"
            self._updates = []

    def _spill(self) -> None:
        with self._lock:
            rows, self._buffer = self._buffer, []
            # A spilled row carries the teacher side queued for it (UPDATEs find no row to change).
            index = {(r["request_id"], r["item"]): r for r in rows}
            kept = []
            for rid, item, values in self._updates:
                if (rid, item) in index:
                    index[rid, item].update(values)
                else:
                    kept.append((rid, item, values))
            self._updates = kept
        self._spill_rows(rows)

    def _spill_rows(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if self.redactor is not None:  # rows put back or never taken: redacted here too (once)
            rows = [records.traffic_row(self.redactor, row) for row in rows]
        directory = self.spill_dir or Path(".")
        directory.mkdir(parents=True, exist_ok=True)
        path = self.spilled or directory / f"traffic-unwritten-{int(time.time())}.jsonl"
        # ensure_ascii: any string (a lone surrogate too) becomes a valid line of JSON.
        with path.open("a", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=True, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v)) + "\n")
        self.spilled = path
        self.spilled_rows += len(rows)
