"""The store on a real SQLite file and a real PostgreSQL server: migrations, WAL, and the whole
pipeline giving the same results on both backends."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, func, select, text

from graduate.pipeline.project import Project
from graduate.store.db import MIGRATIONS, now, open_engine, schema_version, table_names
from graduate.store.schema import imports, metadata


def head_revision() -> str:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head



def _store_at(store_url: str, revision: str):
    """A store migrated by Alembic up to ``revision`` only, as an older graduate left it."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine

    if store_url.startswith("sqlite:///"):
        Path(store_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    raw = create_engine(store_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with raw.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    return raw

def test_migrations_bring_an_empty_store_to_head(store_url: str) -> None:
    engine = open_engine(store_url)
    try:
        assert schema_version(engine) == head_revision()
        assert table_names(engine) == sorted([*metadata.tables, "alembic_version"])
        # The migrations build exactly what schema.py declares: no table, column, index or
        # unique constraint differs.
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        engine.dispose()


def test_opening_twice_is_a_no_op(store_url: str) -> None:
    first = open_engine(store_url)
    with first.begin() as conn:
        conn.execute(imports.insert().values(kind="batch", path="a.jsonl", sha256="0" * 64, added=3, skipped=0, created_at=now()))
    first.dispose()

    second = open_engine(store_url)
    try:
        assert schema_version(second) == head_revision()
        with second.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
            assert conn.execute(select(imports.c.path, imports.c.added)).all() == [("a.jsonl", 3)]
    finally:
        second.dispose()


def test_sqlite_store_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "store" / "graduate.db"
    engine = open_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    finally:
        engine.dispose()
    # WAL is a property of the file: a plain connection without our pragmas sees it too.
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        raw.close()


def test_the_busy_wait_is_what_graduate_store_busy_s_says(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from graduate.errors import StoreError

    monkeypatch.setenv("GRADUATE_STORE_BUSY_S", "0.25")
    engine = open_engine(f"sqlite:///{tmp_path / 'graduate.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 250
    finally:
        engine.dispose()
    for bad in ("soon", "-1", "nan", "inf"):
        monkeypatch.setenv("GRADUATE_STORE_BUSY_S", bad)
        with pytest.raises(StoreError) as err:
            open_engine(f"sqlite:///{tmp_path / 'graduate.db'}")
        assert str(err.value) == f"GRADUATE_STORE_BUSY_S is {bad!r}, not a number of seconds (0 or more); set it to e.g. 30, or unset it for 30 s"


def test_a_busy_wait_past_sqlites_longest_waits_its_longest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # SQLite reads a busy_timeout past 2**31-1 ms (about 24.8 days) as 0: GRADUATE_STORE_BUSY_S=1e9,
    # set to wait as long as it takes, made every write that met a lock fail at once.
    monkeypatch.setenv("GRADUATE_STORE_BUSY_S", "1e9")
    engine = open_engine(f"sqlite:///{tmp_path / 'graduate.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 2**31 - 1
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_postgres_lock_the_server_gave_up_waiting_for_names_the_store_and_loses_nothing(postgres_url: str) -> None:
    # PostgreSQL waits for a lock as long as lock_timeout says (here 0.2 s, from the URL), then
    # fails with lock_not_available: the same one line as a SQLite store held past its busy wait.
    import psycopg
    from sqlalchemy.engine import make_url

    from graduate.errors import StoreLockedError
    from graduate.store.schema import traffic
    from graduate.store.traffic import write_traffic

    url = postgres_url.replace("://graduate@", "://graduate:s3cret@") + "?options=-clock_timeout%3D200"
    engine = open_engine(url)
    base = {"created_at": now(), "endpoint": "classify", "mode": "student", "route": "student", "reason": "student", "status": 200, "latency_ms": 1.0}
    plain = make_url(postgres_url)
    holder = psycopg.connect(host=plain.host, port=plain.port, user=plain.username, dbname=plain.database)
    try:
        write_traffic(engine, [{**base, "request_id": "a" * 32, "text": "kept"}])
        holder.execute("LOCK TABLE traffic IN ACCESS EXCLUSIVE MODE")  # held until the holder's transaction ends
        with pytest.raises(StoreLockedError) as err:
            write_traffic(engine, [{**base, "request_id": "b" * 32, "text": "first"}, {**base, "request_id": "c" * 32, "text": "second"}])
        holder.rollback()
        shown = url.replace(":s3cret@", ":***@")
        assert str(err.value) == f"could not lock the store {shown} in time: another graduate command, a server or a database client holds it (or a deadlock); wait for it to finish or stop it, then run this again"
        with engine.connect() as conn:
            assert conn.execute(select(text("text")).select_from(traffic)).scalars().all() == ["kept"]
    finally:
        holder.close()
        engine.dispose()


def _comparable(summary: dict) -> dict:
    """What must not depend on the backend: everything but timings, paths, ids and CPU costs."""
    return {
        "imports": [{k: v for k, v in r.items() if k != "path"} for r in summary["imports"]],
        "data": summary["data"],
        "dataset": {k: v for k, v in summary["dataset"].items() if k != "id"},
        "unparseable": summary["unparseable_teacher_answers"],
        "teacher_cost_per_1k": summary["teacher"]["cost_per_1k_usd"],
        "test_sets": {
            name: {
                "n": t["n"],
                "content_hash": t["content_hash"],
                "label_counts": t["label_counts"],
                "teacher": t["teacher"],
                "students": {s: {k: m[k] for k in ("accuracy", "f1", "roc_auc", "agreement_with_teacher")} for s, m in t["students"].items()},
            }
            for name, t in summary["test_sets"].items()
        },
        "best_student": summary["best_student"],
    }


@pytest.mark.postgres
def test_pipeline_gives_the_same_results_on_postgres_as_on_sqlite(
    tiny_project: Path, tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_sqlite = Project.load(tiny_project)
    lite = on_sqlite.run()
    on_sqlite.engine.dispose()
    assert on_sqlite.engine.dialect.name == "sqlite"

    pg_dir = tmp_path / "tiny-pg"
    shutil.copytree(tiny_project, pg_dir, ignore=shutil.ignore_patterns(".graduate"))
    monkeypatch.setenv("GRADUATE_STORE_URL", postgres_url)
    on_pg = Project.load(pg_dir)
    try:
        assert on_pg.engine.dialect.name == "postgresql"
        pg = on_pg.run()
        assert _comparable(pg) == _comparable(lite)
        assert [r["added"] for r in pg["imports"]] == [161, 205]
        assert pg["dataset"]["size"] > 0

        # A second run on PostgreSQL imports nothing and reuses the trained students.
        again = Project.load(pg_dir)
        try:
            second = again.run()
        finally:
            again.engine.dispose()
        assert all(r["already_imported"] for r in second["imports"])
        assert all(s["reused"] for s in second["students"].values())
        assert second["dataset"]["content_hash"] == pg["dataset"]["content_hash"]
        with on_pg.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(imports)).scalar_one() == 2
    finally:
        on_pg.engine.dispose()


def test_a_store_at_0004_keeps_its_labels_and_then_takes_long_label_sets(store_url: str) -> None:
    """Migration 0005 widens the label columns: rows written before survive it, and a label set
    longer than the old VARCHAR(200) (which PostgreSQL enforces) is stored whole afterwards."""
    from graduate.store.schema import examples, labels

    raw = _store_at(store_url, "0004")
    with raw.begin() as conn:
        ex = conn.execute(
            examples.insert().values(source="s", external_id="1", text="t", text_hash="0" * 64, tags=[], created_at=now())
        ).inserted_primary_key[0]
        conn.execute(labels.insert().values(example_id=ex, kind="gold", labeller="gold:s", label="care;loyalty", created_at=now()))
    raw.dispose()

    engine = open_engine(store_url)  # upgrades to head
    long_set = ";".join(f"label number {i:02d}" for i in range(30))  # 30 labels, 479 characters
    try:
        assert schema_version(engine) == head_revision() and len(long_set) > 200
        with engine.begin() as conn:
            conn.execute(labels.insert().values(example_id=ex, kind="teacher", labeller="teacher:m", label=long_set, created_at=now()))
        with engine.connect() as conn:
            got = dict(conn.execute(select(labels.c.kind, labels.c.label).where(labels.c.example_id == ex)).all())
        assert got == {"gold": "care;loyalty", "teacher": long_set}
    finally:
        engine.dispose()


def test_store_urls_in_messages_hide_passwords() -> None:
    from graduate.errors import StoreError
    from graduate.store.db import safe_url

    shown = safe_url("postgresql+psycopg://bob:hunter2@db.internal:5432/graduate?password=hunter3&sslmode=require")
    assert "hunter" not in shown and "bob:***@db.internal:5432/graduate" in shown and "sslmode=require" in shown
    assert safe_url("sqlite:////tmp/x/graduate.db") == "sqlite:////tmp/x/graduate.db"
    assert safe_url("not a url") == "not a url"
    with pytest.raises(StoreError) as err:
        open_engine("postgresql+nosuchdriver://bob:hunter2@127.0.0.1:1/x")
    assert "hunter2" not in str(err.value) and "bob:***@" in str(err.value)
    # A URL SQLAlchemy cannot parse (its port is not a number) is shown without its password too.
    for url in ("postgresql+psycopg://bob:hunter2@db:notaport/x", "postgresql+psycopg://bob:hun@ter2@db:5432x/x", "postgresql://bob@db:x/y?sslmode=require&PASSWORD=hunter2"):
        with pytest.raises(StoreError, match="not a database URL") as err:
            open_engine(url)
        assert "hunter2" not in str(err.value) and "ter2" not in str(err.value) and "***" in str(err.value)


def test_a_server_that_refuses_the_connection_is_one_line(tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    import socket

    from graduate.errors import StoreError

    with socket.socket() as s, pytest.raises(StoreError) as err:  # a port nothing listens on (held: no other process takes it)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        open_engine(f"postgresql+psycopg://bob:hunter2@127.0.0.1:{port}/x")
    message = str(err.value)
    assert "\n" not in message and "Connection refused" in message and "Is the server running" in message and "hunter2" not in message


@pytest.mark.postgres
def test_status_and_its_store_url_never_show_a_password_given_in_the_query(tiny_project: Path, postgres_url: str) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "GRADUATE_STORE_URL": f"{postgres_url}?password=hunter2", "COLUMNS": "400"}
    result = subprocess.run([sys.executable, "-m", "graduate", "status", str(tiny_project)], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    title = "".join(line.strip() for line in result.stdout.split("┏")[0].splitlines())  # the table's title, wrapped to its width
    assert title == f"toxicity: store{postgres_url}"  # (the wrap ate the space)
    assert "hunter2" not in result.stdout


def test_processes_opening_a_new_store_at_once_all_succeed(store_url: str) -> None:
    # `graduate status P & graduate status P` on a new project: the second failed with "table
    # datasets already exists" (both ran the first migration). They now take turns.
    import subprocess
    import sys
    import time

    start = time.time() + 3.0  # every process waits for the same moment, then opens the store
    code = (
        "import time, sys\n"
        f"time.sleep(max(0.0, {start!r} - time.time()))\n"
        "from graduate.store.db import open_engine, schema_version\n"
        f"e = open_engine({store_url!r})\n"
        "print(schema_version(e))\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [err[-500:] for _, err in results]
    assert len({out.strip() for out, _ in results}) == 1


def test_a_store_a_newer_graduate_migrated_is_refused_in_one_line(store_url: str) -> None:
    from graduate.errors import StoreError

    engine = open_engine(store_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099_from_a_newer_graduate'"))
    engine.dispose()
    with pytest.raises(StoreError) as err:
        open_engine(store_url)
    message = str(err.value)
    assert "revision 0099_from_a_newer_graduate, which this graduate does not know" in message and "upgrade graduate" in message
    assert "\n" not in message
    # Nothing was changed: the newer graduate still finds its revision.
    raw = create_engine(store_url)
    try:
        with raw.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0099_from_a_newer_graduate"
    finally:
        raw.dispose()


def test_a_migration_that_fails_midway_changes_nothing_and_the_next_open_completes_it(store_url: str) -> None:
    """SQLite runs DDL outside a transaction unless one is begun: a migration that failed (or was
    killed) after its first statement left that table behind, and every later open failed on
    "table already exists". Here 0013's index name is taken, so its CREATE INDEX fails after its
    CREATE TABLE."""
    from graduate.errors import StoreError

    raw = _store_at(store_url, "0012")
    with raw.begin() as conn:
        conn.execute(text("CREATE TABLE squatter (x INTEGER)"))
        conn.execute(text("CREATE INDEX ix_dataset_builds_dataset_id ON squatter (x)"))
    try:
        with pytest.raises(StoreError, match="cannot migrate"):
            open_engine(store_url)
        with raw.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0012"
        assert "dataset_builds" not in table_names(raw)  # rolled back with the rest

        with raw.begin() as conn:
            conn.execute(text("DROP INDEX ix_dataset_builds_dataset_id"))
        engine = open_engine(store_url)
        try:
            assert schema_version(engine) == head_revision() and "dataset_builds" in table_names(engine)
        finally:
            engine.dispose()
    finally:
        raw.dispose()


def test_0015_indexes_the_lease_owners_byte_by_byte_and_goes_back_cleanly(store_url: str) -> None:
    """graduate label --ray finds a run's rows by a range on the owner (RUN- <= owner < RUN.): the
    exact prefix only in a byte-by-byte order, so on PostgreSQL the column is collation "C" whatever
    the database's locale (one ignoring punctuation would put RUN-0-0 after RUN.)."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import inspect

    raw = _store_at(store_url, "head")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))

    def state() -> tuple:
        found = inspect(raw)
        indexes = {i["name"] for t in ("teacher_calls", "budget_slices") for i in found.get_indexes(t)}
        collations: list = []
        if raw.dialect.name == "postgresql":
            with raw.connect() as conn:
                collations = sorted(conn.execute(text(
                    "SELECT column_name, collation_name FROM information_schema.columns "
                    "WHERE (table_name, column_name) IN (('teacher_calls', 'lease_owner'), ('budget_slices', 'owner'))"
                )).all())  # fmt: skip
        return indexes >= {"ix_teacher_calls_lease_owner", "ix_budget_slices_owner"}, "transient" in {c["name"] for c in found.get_columns("teacher_calls")}, collations

    try:
        pg = raw.dialect.name == "postgresql"
        assert state() == (True, True, [("lease_owner", "C"), ("owner", "C")] if pg else [])
        with raw.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0014")
        assert state() == (False, False, [("lease_owner", None), ("owner", None)] if pg else [])
        with raw.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        assert state()[:2] == (True, True)
    finally:
        raw.dispose()


def test_a_relative_sqlite_url_in_the_spec_is_relative_to_the_project_not_the_working_directory(tiny_project: Path, tmp_path: Path) -> None:
    # Every path in graduate.yaml is relative to it; store.url was relative to wherever the command
    # ran, so `graduate status` from another folder silently opened a new, empty store there.
    import os
    import subprocess
    import sys

    import yaml

    spec = yaml.safe_load((tiny_project / "graduate.yaml").read_text())
    spec["store"] = {"url": "sqlite:///team/graduate.db"}
    (tiny_project / "graduate.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "GRADUATE_STORE_URL"} | {"COLUMNS": "400"}
    result = subprocess.run([sys.executable, "-m", "graduate", "status", str(tiny_project)], cwd=elsewhere, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tiny_project / "team" / "graduate.db").is_file() and list(elsewhere.iterdir()) == []
    proj = Project.load(tiny_project)
    try:
        assert proj.engine.url.database == str((tiny_project / "team" / "graduate.db").resolve())
    finally:
        proj.engine.dispose()


@pytest.mark.postgres
def test_a_search_path_naming_a_schema_that_does_not_exist_says_to_create_it(postgres_url: str) -> None:
    from graduate.errors import StoreError

    with pytest.raises(StoreError) as err:
        open_engine(f"{postgres_url}?options=-csearch_path%3Dteam_x")
    message = str(err.value)
    assert "does not exist in this database; create it first (CREATE SCHEMA NAME)" in message and "\n" not in message


@pytest.mark.postgres
def test_runs_keep_the_spec_without_the_store_password(tiny_project: Path, postgres_url: str) -> None:
    # A run saves its resolved spec in the store and in run.json beside the student, which is
    # copied and shipped: store.url's password must not travel with it.
    import yaml

    from graduate.store.schema import runs

    url = postgres_url.replace("graduate@", "graduate:hunter2@")  # the test server trusts any password
    spec = yaml.safe_load((tiny_project / "graduate.yaml").read_text())
    spec["store"] = {"url": url}
    (tiny_project / "graduate.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    proj = Project.load(tiny_project)
    try:
        proj.run()
        with proj.engine.connect() as conn:
            stored = [r.spec for r in conn.execute(select(runs.c.spec))]
    finally:
        proj.engine.dispose()
    run_files = list((tiny_project / ".graduate" / "runs").rglob("run.json"))
    assert stored and run_files
    assert all(s["store"]["url"] == url.replace(":hunter2@", ":***@") for s in stored)
    assert not [f for f in run_files if "hunter2" in f.read_text()]


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite+pysqlite://"])
def test_an_in_memory_sqlite_store_is_refused_for_a_project(tiny_project: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # It "worked", and forgot the call log, the spend against budget_usd and the runs when the command ended.
    from graduate.errors import StoreError

    monkeypatch.setenv("GRADUATE_STORE_URL", url)
    with pytest.raises(StoreError, match="an in-memory SQLite store forgets everything when the command ends; give a file"):
        Project.load(tiny_project)
