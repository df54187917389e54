"""The store's own work lock, for a store that several machines share: on PostgreSQL a session-level
advisory lock (``pg_try_advisory_lock``) held on a connection of its own while a step works, so a
``graduate run`` on another machine against the same database stops at once instead of racing
this one for the same runs. PostgreSQL lets go of it when the connection ends, also when its
process is killed (``kill -9``): no stale lock. On SQLite (one machine) the project's file lock
(``graduate.pipeline.lock``) is the whole guard and this holds nothing.

The lock's connection carries ``application_name`` = ``graduate pid <pid> on <host>: <step>``, so a
refused process can name who holds it (from ``pg_stat_activity``), with the server's backend pid.
A holder whose machine vanished without closing its connection (power off, network gone) keeps the
lock until the server notices the connection is dead: the lock's connection asks the server to probe
it over TCP after ``KEEPALIVE_IDLE_S`` idle seconds, every ``KEEPALIVE_INTERVAL_S``, and to drop it
after ``KEEPALIVE_COUNT`` unanswered probes (``tcp_keepalives_*``, settable per session), so the
lock frees itself within about a minute, not the operating system's default two hours; ``SELECT
pg_terminate_backend(PID)`` ends it at once. (A Unix-socket connection has no TCP to probe; its
peer is on the same machine, whose end the server sees.)
"""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Any

from sqlalchemy import Engine, text

# pg_try_advisory_lock(int4, int4): graduate's namespace ('grad' as int32) and the work lock's id,
# one per schema (the store's tables live in the connection's current_schema(); two stores in two
# schemas of one database do not wait on each other). WORK is the id of the schema "public".
NAMESPACE, WORK = 0x67726164, 1

APP_NAME_MAX = 63  # PostgreSQL truncates application_name at NAMEDATALEN - 1 bytes
# The server's TCP keepalive on the lock's connection: a vanished holder is dropped after about
# KEEPALIVE_IDLE_S + KEEPALIVE_COUNT * KEEPALIVE_INTERVAL_S seconds.
KEEPALIVE_IDLE_S, KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT = 30, 10, 3


def work_key(schema: str | None) -> int:
    """The work lock's id (int4) for the store in ``schema``: WORK for ``public`` (what every
    store used before schemas had keys of their own), else a CRC-32 of the name."""
    import zlib

    if schema in (None, "public"):
        return WORK
    key = zlib.crc32(schema.encode("utf-8"))
    key = key - (1 << 32) if key >= 1 << 31 else key
    return WORK + 1 if key == WORK else key


class StoreLock:
    """A held store lock; ``release`` lets go. Use ``acquire`` to take one."""

    def __init__(self, conn: Any | None, key: int = WORK):
        self._conn, self._key = conn, key

    def release(self) -> None:
        """Unlock (so another machine can take it at once), then close the lock's own connection
        rather than return it to the pool: the lock and its name end with it. Never raises: a
        connection that is already gone took the lock with it."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):
            conn.execute(text("SELECT pg_advisory_unlock(CAST(:ns AS integer), CAST(:id AS integer))"), {"ns": NAMESPACE, "id": self._key})
        _discard(conn)


def _discard(conn: Any) -> None:
    with contextlib.suppress(Exception):
        conn.invalidate()
    with contextlib.suppress(Exception):
        conn.close()


def holder_name(step: str) -> str:
    """What the lock's connection is called in pg_stat_activity: pid first, so that a long host
    name cut at PostgreSQL's 63 bytes still leaves it. PostgreSQL keeps only printable ASCII in an
    application_name (anything else becomes '?'), so other characters and '%' are percent-encoded
    (``holder_text`` decodes them), whole characters only within the 63 bytes."""
    from urllib.parse import quote

    out = ""
    for ch in f"graduate pid {os.getpid()} on {socket.gethostname()}: {step}":
        part = ch if " " <= ch <= "~" and ch != "%" else quote(ch, safe="")
        if len(out) + len(part) > APP_NAME_MAX:
            break
        out += part
    return out


def holder_text(name: str) -> str:
    """A holder's application_name as the holder wrote it (``holder_name`` percent-encoded it)."""
    from urllib.parse import unquote

    return unquote(name)


def acquire(engine: Engine, step: str) -> StoreLock | str:
    """Take the store's work lock: a StoreLock (holding nothing on SQLite), or, when another
    connection holds it, a description of the holder (its application name, address, since when
    and server backend pid) for the caller's error."""
    if engine.dialect.name != "postgresql":
        return StoreLock(None)
    conn = None
    try:
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(text("SELECT set_config('application_name', :name, false)"), {"name": holder_name(step)})
        for setting, value in (("tcp_keepalives_idle", KEEPALIVE_IDLE_S), ("tcp_keepalives_interval", KEEPALIVE_INTERVAL_S), ("tcp_keepalives_count", KEEPALIVE_COUNT)):
            conn.execute(text("SELECT set_config(:setting, :value, false)"), {"setting": setting, "value": str(value)})
        key = work_key(conn.execute(text("SELECT current_schema()")).scalar_one())
        got = conn.execute(text("SELECT pg_try_advisory_lock(CAST(:ns AS integer), CAST(:id AS integer))"), {"ns": NAMESPACE, "id": key}).scalar_one()
        if got:
            return StoreLock(conn, key)
        row = conn.execute(
            text(
                "SELECT a.application_name, a.client_addr, a.backend_start, a.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND l.classid::bigint = CAST(:ns AS bigint) AND l.objid::bigint = CAST(:id AS bigint) AND l.objsubid = 2"
            ),
            {"ns": NAMESPACE, "id": key & 0xFFFFFFFF},  # pg_locks shows an int4 key as an unsigned oid
        ).first()
    except BaseException:
        if conn is not None:
            _discard(conn)
        raise
    _discard(conn)
    if row is None:  # let go in between: the caller may simply try again
        return "a connection that has just let go of it"
    name, addr, since, backend = row
    # Another database role's session shows no name, address or start without pg_read_all_stats.
    parts = [holder_text(name) if name else "a session whose name this role may not see"]
    if addr is not None:
        parts.append(f"from {addr}")
    if since is not None:
        parts.append(f"since {since:%Y-%m-%d %H:%M:%S}")
    return ", ".join([" ".join(parts[:2]), *parts[2:], f"server backend pid {backend}"])
