"""One writer per store across machines: two project folders (as on two machines, each with its own
file lock) on one PostgreSQL store. While one works, the other stops at once with a line naming
it (host, pid, step, address) and writes nothing; PostgreSQL lets go of the lock when the holder's
connection ends, also on kill -9."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from graduate.errors import BusyError
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


@pytest.mark.postgres
def test_a_second_machine_on_the_same_postgres_store_stops_at_once_naming_the_first(tiny_project: Path, tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # the test server trusts 127.0.0.1, so it ignores the password; messages must not show it
    postgres_url = postgres_url.replace("://graduate@", "://graduate:s3cret@") + "?connect_timeout=30"
    monkeypatch.setenv("GRADUATE_STORE_URL", postgres_url)
    other = tmp_path / "machine-b"
    shutil.copytree(tiny_project, other, ignore=shutil.ignore_patterns(".graduate"))
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tiny_project)], stdout=subprocess.PIPE, text=True, env=cli_env())
    proj = Project.load(other)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(BusyError) as err:
            with proj.exclusive("training tfidf-logreg"):
                pass
        message = str(err.value)
        assert f"working on this project's store (graduate pid {holder.pid} on {socket.gethostname()}: graduate run from 127.0.0.1, since " in message, message
        assert "server backend pid " in message and "s3cret" not in message and "graduate:***@127.0.0.1" in message, message

        # threads of one process that all start while another machine holds the store: none runs
        ran: list[str] = []
        refused: list[str] = []

        def try_step(i: int) -> None:
            try:
                with proj.exclusive(f"step {i}"):
                    ran.append(f"step {i}")
            except BusyError:
                refused.append(f"step {i}")

        for _ in range(5):
            threads = [threading.Thread(target=try_step, args=(i,)) for i in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=60)
        assert ran == [] and len(refused) == 20

        second = subprocess.run([sys.executable, "-m", "graduate", "run", str(other)], capture_output=True, text=True, env=cli_env(), timeout=120)
        out = " ".join((second.stdout + second.stderr).split())
        assert second.returncode == 2 and f"graduate pid {holder.pid} on {socket.gethostname()}: graduate run" in out and "Traceback" not in out, out
        with proj.engine.connect() as conn:  # it wrote nothing
            assert conn.execute(select(func.count()).select_from(teacher_calls)).scalar() == 0
            assert conn.execute(select(func.count()).select_from(runs)).scalar() == 0
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)

    # kill -9: the server ends the holder's session and its lock with it (at once, or within moments)
    deadline = time.monotonic() + 60
    while True:
        try:
            with proj.exclusive("graduate run"):
                with proj.exclusive("nested"):  # re-entrant within the process
                    pass
            break
        except BusyError:
            assert time.monotonic() < deadline, "the killed holder's lock was never let go"
            time.sleep(0.2)
    # and given back on leaving: another process takes it at once
    took = subprocess.run([sys.executable, "-c", HOLD.replace("time.sleep(600)", "pass"), str(tiny_project)], capture_output=True, text=True, env=cli_env(), timeout=120)
    assert took.returncode == 0 and took.stdout.strip() == "held", took.stderr
    proj.engine.dispose()


@pytest.mark.postgres
def test_the_lock_connection_asks_the_server_to_drop_a_vanished_holder_within_a_minute(postgres_url: str) -> None:
    """A holder whose machine vanishes (no FIN, no RST) cannot end its session; the lock's
    connection sets the server's TCP keepalive for itself, so the server probes it after 30 idle
    seconds and drops it (and the lock) after three unanswered probes 10 s apart."""
    from sqlalchemy import create_engine, text

    from graduate.store import advisory

    engine = create_engine(postgres_url)
    try:
        lock = advisory.acquire(engine, "graduate run")
        assert isinstance(lock, advisory.StoreLock)
        conn = lock._conn
        shown = {name: conn.execute(text(f"SHOW {name}")).scalar_one() for name in ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count")}
        assert shown == {"tcp_keepalives_idle": "30", "tcp_keepalives_interval": "10", "tcp_keepalives_count": "3"}, shown
        assert advisory.KEEPALIVE_IDLE_S + advisory.KEEPALIVE_COUNT * advisory.KEEPALIVE_INTERVAL_S <= 60
        # the pool's other connections keep the server's defaults
        with engine.connect() as other:
            assert other.execute(text("SHOW tcp_keepalives_idle")).scalar_one() != "30"
        lock.release()
        again = advisory.acquire(engine, "graduate run")
        assert isinstance(again, advisory.StoreLock)
        again.release()
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_stores_in_two_schemas_of_one_database_lock_apart(postgres_url: str) -> None:
    """The work lock is per schema (the store's current_schema()): a store in schema a and one in
    schema b work at the same time; a second worker on either store's schema is refused, naming
    the holder; public keeps the key every store used before."""
    from sqlalchemy import create_engine, text

    from graduate.store import advisory

    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for schema in ("store_a", "store_b", "störe_c"):
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    engines = {s: create_engine(postgres_url, connect_args={"options": f"-csearch_path={s}"}) for s in ("store_a", "store_b", "störe_c")}
    held = []
    try:
        for i, (schema, engine) in enumerate(engines.items()):
            with engine.connect() as conn:
                assert conn.execute(text("SELECT current_schema()")).scalar_one() == schema
            lock = advisory.acquire(engine, f"ö✓{i}%")  # PostgreSQL keeps only ASCII in names: percent-encoded
            assert isinstance(lock, advisory.StoreLock), lock
            held.append(lock)
        for i, engine in enumerate(engines.values()):
            refused = advisory.acquire(engine, "second")
            assert isinstance(refused, str) and refused.endswith(tuple("0123456789")) and f": ö✓{i}% from 127.0.0.1" in refused, refused
        assert isinstance(public := advisory.acquire(admin, "public"), advisory.StoreLock)
        public.release()
        assert advisory.work_key("public") == advisory.WORK and len({advisory.work_key(s) for s in engines} | {advisory.WORK}) == 4
    finally:
        for lock in held:
            lock.release()
        for engine in [*engines.values(), admin]:
            engine.dispose()
