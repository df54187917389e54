"""The store's own work lock, for a store that several machines share: on PostgreSQL a session-level
advisory lock (``pg_try_advisory_lock``) held on a connection of its own while a step works, so a
``graduate run`` on another machine against the same database stops at once instead of racing
this one for the same runs. PostgreSQL lets go of it when the connection ends, also when its
process is killed (``kill -9``): no stale lock. On SQLite (one machine) the project's file lock
(``graduate.pipeline.lock``) is the whole guard and this holds nothing.

The lock's connection carries ``application_name`` = ``graduate <host> pid <pid>: <step>``, so a
refused process can name who holds it (from ``pg_stat_activity``), with the server's backend pid:
a holder whose machine vanished without closing its connection keeps the lock until the server
notices (TCP keepalive), or until ``SELECT pg_terminate_backend(PID)`` ends it.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from sqlalchemy import Engine, text

# pg_try_advisory_lock(int4, int4): graduate's namespace ('grad' as int32) and the work lock's id.
NAMESPACE, WORK = 0x67726164, 1
APP_NAME_MAX = 63  # PostgreSQL truncates application_name at NAMEDATALEN - 1 bytes


class StoreLock:
    """A held store lock; ``release`` lets go. Use ``acquire`` to take one."""

    def __init__(self, conn: Any | None):
        self._conn = conn

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.execute(text("SELECT pg_advisory_unlock(CAST(:ns AS integer), CAST(:id AS integer))"), {"ns": NAMESPACE, "id": WORK})
            conn.execute(text("RESET application_name"))
        finally:
            conn.close()


def holder_name(step: str) -> str:
    name = f"graduate {socket.gethostname()} pid {os.getpid()}: {step}"
    return name.encode("utf-8")[:APP_NAME_MAX].decode("utf-8", "ignore")


def acquire(engine: Engine, step: str) -> StoreLock | str:
    """Take the store's work lock: a StoreLock (holding nothing on SQLite), or, when another
    connection holds it, a description of the holder (its application name, address and since
    when) for the caller's error."""
    if engine.dialect.name != "postgresql":
        return StoreLock(None)
    conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        conn.execute(text("SELECT set_config('application_name', :name, false)"), {"name": holder_name(step)})
        got = conn.execute(text("SELECT pg_try_advisory_lock(CAST(:ns AS integer), CAST(:id AS integer))"), {"ns": NAMESPACE, "id": WORK}).scalar_one()
        if got:
            return StoreLock(conn)
        row = conn.execute(
            text(
                "SELECT a.application_name, a.client_addr, a.backend_start, a.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.classid::bigint = CAST(:ns AS bigint) AND l.objid::bigint = CAST(:id AS bigint) AND l.objsubid = 2"
            ),
            {"ns": NAMESPACE, "id": WORK},
        ).first()
        conn.execute(text("RESET application_name"))
    except BaseException:
        conn.close()
        raise
    conn.close()
    if row is None:  # let go in between: the caller may simply try again
        return "a connection that has just let go of it"
    name, addr, since, backend = row
    where = f" from {addr}" if addr is not None else ""
    return f"{name or 'a connection without a name'}{where}, since {since:%Y-%m-%d %H:%M:%S}, server backend pid {backend}"
