"""Open the store: an SQLAlchemy engine at the schema's newest migration.

SQLite (the default, one file in PROJECT/.graduate/) runs in WAL mode with a busy timeout so a
reader never blocks the writer; any other SQLAlchemy URL (PostgreSQL) works the same way. A write
that waits on another process's lock longer than the busy wait (GRADUATE_STORE_BUSY_S, default 30 s)
raises StoreLockedError naming the store; its transaction rolls back.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy import Connection, Engine, Table, create_engine, event, inspect
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import SQLAlchemyError

from graduate.errors import StoreError, StoreLockedError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock file; open a new store from one process first
    fcntl = None  # type: ignore[assignment]

MIGRATIONS = Path(__file__).parent / "migrations"


def now() -> datetime:
    return datetime.now(timezone.utc)


def default_url(project_dir: Path) -> str:
    return f"sqlite:///{(project_dir / '.graduate' / 'graduate.db').resolve()}"


def resolve_url(configured: str | None, project_dir: Path) -> str:
    """GRADUATE_STORE_URL, else graduate.yaml's store.url (a relative SQLite path in it is relative
    to the project, like every path in graduate.yaml, not to wherever the command runs), else the default."""
    from sqlalchemy.engine import make_url

    url = os.environ.get("GRADUATE_STORE_URL") or configured
    if not url:
        return default_url(project_dir)
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - open_engine names a malformed URL
        return url
    if parsed.get_backend_name() != "sqlite":
        return url
    database = parsed.database
    if database in (None, "", ":memory:"):
        # Nothing would outlive the command: the call log, the spend against budget_usd, the runs.
        raise StoreError(
            "an in-memory SQLite store forgets everything when the command ends; give a file (sqlite:///PATH) or leave "
            "store.url and GRADUATE_STORE_URL unset for PROJECT/.graduate/graduate.db",
            url=safe_url(url),
        )
    if url != configured or database.startswith("file:") or Path(database).is_absolute():
        return url
    return parsed.set(database=str((project_dir / database).resolve())).render_as_string(hide_password=False)


BUSY_ENV = "GRADUATE_STORE_BUSY_S"
DEFAULT_BUSY_S = 30.0
_SQLITE_MOST_MS = 2**31 - 1


def busy_s() -> float:
    """How long a SQLite write waits for another process's lock: GRADUATE_STORE_BUSY_S, else 30 s."""
    value = os.environ.get(BUSY_ENV, "").strip()
    if not value:
        return DEFAULT_BUSY_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise StoreError(f"{BUSY_ENV} is {value!r}, not a number of seconds (0 or more); set it to e.g. 30, or unset it for 30 s")
    return seconds


def _sqlite_pragmas(busy_ms: int) -> Any:
    def pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={busy_ms:d}")
        cur.close()

    return pragmas


# PostgreSQL's SQLSTATEs for a statement that gave up on a lock another session held:
# lock_not_available (lock_timeout), deadlock_detected, serialization_failure.
_PG_LOCKED = frozenset({"55P03", "40P01", "40001"})


def _locked(exc: BaseException) -> bool:
    """Whether the driver's exception says another session held the lock this statement needed."""
    code = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)  # psycopg 3, psycopg2
    if code is not None:
        return code in _PG_LOCKED
    return type(exc).__module__ == "sqlite3" and str(exc).startswith("database is locked")  # SQLITE_BUSY


def _store_locked(url: str, where: str) -> Any:
    """A handle_error listener: a lock held past the wait is the user's to resolve, not a bug."""

    def raise_locked(ctx: ExceptionContext) -> None:
        if _locked(ctx.original_exception):
            # Raised in place of SQLAlchemy's error, after its cleanup; the caller's transaction rolls back.
            raise StoreLockedError(url=url, where=where) from ctx.original_exception

    return raise_locked


def open_engine(url: str) -> Engine:
    """Create the engine and bring the schema to the newest migration."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy raises several types for a bad URL
        raise StoreError(f"not a database URL ({exc})", url=safe_url(url)) from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    # SQLite takes a busy_timeout up to 2**31-1 ms (24.8 days) and reads a longer one as 0, no wait at all
    busy_ms = min(round(busy_s() * 1000), _SQLITE_MOST_MS) if parsed.get_backend_name() == "sqlite" else 0
    try:
        engine = create_engine(url, future=True)
    except (SQLAlchemyError, ImportError) as exc:
        raise StoreError(f"cannot open ({exc}); for PostgreSQL install graduate[postgres]", url=safe_url(url)) from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas(busy_ms))
    sqlite_file = engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:")
    event.listen(engine, "handle_error", _store_locked(safe_url(url), str(engine.url.database) if sqlite_file else safe_url(url)))
    try:
        migrate(engine)
    except SQLAlchemyError as exc:
        reason = " ".join(str(exc.orig if hasattr(exc, "orig") else exc).split())  # libpq's reasons run over several lines
        if "no schema has been selected to create in" in reason:  # PostgreSQL: the search_path names no schema that exists
            reason = (
                "the schema the URL's search_path names (options=-csearch_path=NAME) does not exist in this database; "
                "create it first (CREATE SCHEMA NAME) or name one that exists"
            )
        raise StoreError(f"cannot migrate: {exc.__class__.__name__}: {reason}", url=safe_url(url)) from None
    return engine


_MIGRATE_LOCK_KEY = 7_203_013  # PostgreSQL: the advisory lock that serialises migrations


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration. Two processes opening a new store at once take
    turns (SQLite: a lock file beside the database; PostgreSQL: an advisory lock), so the second
    finds the schema made instead of creating the same tables again."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with _migration_lock(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            from sqlalchemy import text

            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATE_LOCK_KEY})
        if _at_head(conn, cfg, engine):
            return
        if conn.dialect.name == "sqlite":
            # pysqlite begins a transaction only at the first INSERT/UPDATE/DELETE, so CREATE TABLE
            # and the like would each commit on their own: a migration that failed or was killed
            # midway would leave its first tables behind and every later open would fail on them.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def _at_head(conn: Connection, cfg: Any, engine: Engine) -> bool:
    """Whether the store is at the newest migration. A store a newer graduate migrated (several
    machines share one PostgreSQL store, not all upgraded) is refused in one line saying so, not
    Alembic's "Can't locate revision"."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(cfg)
    current = set(MigrationContext.configure(conn).get_current_heads())
    known = {s.revision for s in script.walk_revisions()}
    unknown = sorted(current - known)
    if unknown:
        raise StoreError(
            f"its schema is at revision {unknown[0]}, which this graduate does not know: a newer graduate migrated it; "
            "upgrade graduate here (pip install -U graduate) before using this store",
            url=safe_url(engine.url),
        )
    return current == set(script.get_heads())


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or fcntl is None:
        yield
        return
    with open(f"{database}.migrate-lock", "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def schema_version(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def table_names(engine: Engine) -> list[str]:
    return sorted(inspect(engine).get_table_names())


_WRITE_LOCK_KEY = 7_203_012  # PostgreSQL: the advisory lock write_lock() takes (leases.py uses 7_203_011)


def write_lock(conn: Connection) -> None:
    """Hold the store's write lock for the rest of this transaction, before reading what it will
    write against (the next free sample index): a second writer waits instead of reading the same
    and losing its rows to a unique constraint. SQLite: a write that changes nothing takes the
    database's write lock (pysqlite would otherwise start the transaction only at the first write);
    PostgreSQL: a transaction-scoped advisory lock."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy import text

        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _WRITE_LOCK_KEY})
    elif conn.dialect.name == "sqlite":
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = version_num WHERE 0")


def insert_ignore(conn: Connection, table: Table, rows: Iterable[dict[str, Any]]) -> int:
    """Insert rows, skipping any that hit a unique constraint. Returns how many were inserted."""
    rows = list(rows)
    if not rows:
        return 0
    dialect = conn.dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:  # pragma: no cover - other dialects: plain insert, one by one
        from sqlalchemy import insert as _insert
        from sqlalchemy.exc import IntegrityError

        n = 0
        for row in rows:
            try:
                with conn.begin_nested():
                    conn.execute(_insert(table), row)
                n += 1
            except IntegrityError:
                pass
        return n
    # Without preserve_rowcount, psycopg 3 reports -1 for an executemany and every insert would
    # count as skipped (https://github.com/sqlalchemy/sqlalchemy/issues/10974).
    stmt = insert(table).on_conflict_do_nothing().execution_options(preserve_rowcount=True)
    result = conn.execute(stmt, rows)
    return max(result.rowcount, 0)


def safe_url(url: Any) -> str:
    """The URL (a string or a SQLAlchemy URL) without its password, also one given as a query
    parameter, for messages."""
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        query = {k: v for k, v in parsed.query.items() if k.lower() != "password"}
        return parsed.set(query=query).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL (a port that is not a number) is shown as given, less its password
        return _PASSWORD_QUERY.sub(r"\1***", _PASSWORD_NETLOC.sub(r"\1***@", str(url)))


_PASSWORD_NETLOC = re.compile(r"(://[^/@:]*:)[^/]*@")  # scheme://user:PASSWORD@host
_PASSWORD_QUERY = re.compile(r"([?&]password=)[^&]*", re.IGNORECASE)
