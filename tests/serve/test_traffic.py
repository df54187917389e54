"""The traffic writer (graduate.serve.traffic) on a real SQLite store that another process locks."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from graduate.serve.traffic import TrafficWriter
from graduate.store.db import now, open_engine
from graduate.store.schema import traffic


def test_a_store_locked_past_its_busy_wait_is_written_later_not_spilled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A lock held past the busy wait is a passing reason (retried with backoff), not a row the store
    # refuses for its content (written row by row, and each one refused alone goes to the spill file).
    monkeypatch.setenv("GRADUATE_STORE_BUSY_S", "0.1")
    db = tmp_path / "store" / "graduate.db"
    engine = open_engine(f"sqlite:///{db}")
    base = {"created_at": now(), "endpoint": "classify", "mode": "student", "route": "student", "reason": "student", "status": 200, "latency_ms": 1.0}
    writer = TrafficWriter(engine, flush_s=0.05, spill_dir=tmp_path / "spill")
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        writer.start()
        writer.add([{**base, "request_id": f"{i:032d}", "text": f"text {i}"} for i in range(3)])
        deadline = time.monotonic() + 30
        while writer.failures < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert writer.failures >= 2, writer.last_error
        assert writer.spilled_rows == 0 and writer.pending == 3, (writer.spilled_rows, writer.last_error)
        assert "could not lock the store" in (writer.last_error or ""), writer.last_error
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    writer.close(timeout=30)
    try:
        assert writer.spilled is None and writer.written == 3, (writer.spilled_rows, writer.last_error)
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(traffic)).scalar_one() == 3
    finally:
        engine.dispose()
