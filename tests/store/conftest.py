"""Store fixtures: a fresh store per test on each backend, and a real throwaway PostgreSQL server.

The server is started once per session: binaries from ``pg_config --bindir``,
/usr/lib/postgresql/*/bin or PATH (else ``scripts/install_postgres.sh`` installs Debian's
package, as root); ``initdb`` into a temporary directory, listening on 127.0.0.1 at a free port
and on a socket in that directory; as root it runs as the ``postgres`` user (or ``nobody``),
because postgres refuses to run as root. Each test gets its own database. If no server can be
had, the postgres tests fail with the reason, unless GRADUATE_SKIP_POSTGRES=1.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from graduate.store.db import open_engine

INSTALL_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "install_postgres.sh"
SERVER_PROGRAMS = ("initdb", "pg_ctl", "postgres")
SUPERUSER = "graduate"


class PostgresUnavailable(Exception):
    """No PostgreSQL server could be found, installed or started; the message says why."""


@dataclass
class PostgresServer:
    bindir: Path
    root: Path
    port: int
    run_as: tuple[int, int] | None
    created: int = 0

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """Create an empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = f"t{self.created}_{uuid.uuid4().hex[:8]}"
        self.created += 1
        with psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        _run(self, "pg_ctl", "stop", "-D", str(self.datadir), "-m", "fast", "-w", check=False)


def _run(server: PostgresServer, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    user: dict[str, object] = {}
    if server.run_as is not None:
        uid, gid = server.run_as
        user = {"user": uid, "group": gid, "extra_groups": []}
    proc = subprocess.run(
        [str(server.bindir / program), *args],
        capture_output=True,
        text=True,
        timeout=180,  # pg_ctl start -t 120: a loaded machine may take its time
        cwd=server.root,
        env={**os.environ, "LC_ALL": "C"},
        **user,  # type: ignore[arg-type]
    )
    if check and proc.returncode != 0:
        raise PostgresUnavailable(f"{program} {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def find_bindir() -> Path | None:
    """The first directory holding initdb, pg_ctl and postgres: pg_config, Debian's layout, PATH."""
    candidates: list[Path] = []
    if pg_config := shutil.which("pg_config"):
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out:
            candidates.append(Path(out))
    # Newest major version first: /usr/lib/postgresql/9.6 sorts after 16 as text.
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += [Path(p) for p in sorted(versions, key=lambda p: [int(x) for x in Path(p).parent.name.split(".") if x.isdigit()], reverse=True)]
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).resolve().parent)
    for d in candidates:
        if all((d / prog).is_file() and os.access(d / prog, os.X_OK) for prog in SERVER_PROGRAMS):
            return d
    return None


def _install() -> None:
    try:
        proc = subprocess.run(["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.SubprocessError) as exc:
        raise PostgresUnavailable(f"{INSTALL_SCRIPT.name} could not run: {exc}") from None
    if proc.returncode != 0:
        raise PostgresUnavailable(f"{INSTALL_SCRIPT.name} failed: {proc.stderr.strip()[-2000:]}")


def _unprivileged_user() -> tuple[int, int] | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            continue
        return pw.pw_uid, pw.pw_gid
    raise PostgresUnavailable("running as root and there is neither a `postgres` nor a `nobody` user to run the server as")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server() -> PostgresServer:
    """Find (or install) PostgreSQL, initdb a throwaway cluster and start it."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise PostgresUnavailable("psycopg is not installed; run `pip install -e '.[test]'`") from None
    bindir = find_bindir()
    if bindir is None:
        _install()
        bindir = find_bindir()
    if bindir is None:
        raise PostgresUnavailable("no initdb/pg_ctl/postgres found after installing (looked at pg_config, /usr/lib/postgresql/*/bin, PATH)")
    run_as = _unprivileged_user()
    # Not under pytest's basetemp: that is private to root, and the server may run as another user.
    root = Path(tempfile.mkdtemp(prefix="graduate-pg-"))
    if run_as is not None:
        os.chown(root, *run_as)
    server = PostgresServer(bindir, root, 0, run_as)
    try:
        _run(
            server, "initdb", "-D", str(server.datadir), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"
        )
        with (server.datadir / "postgresql.conf").open("a") as conf:
            # A throwaway cluster: durability is not wanted, speed is.
            conf.write(
                "\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{root}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "shared_buffers = 32MB\nmax_connections = 50\n"
            )
        # The free port may be taken between our probe and the server's bind: try a few.
        for _ in range(3):
            server.port = _free_port()
            proc = _run(
                server, "pg_ctl", "start", "-w", "-t", "120", "-D", str(server.datadir),
                "-l", str(root / "server.log"), "-o", f"-p {server.port}", check=False,
            )  # fmt: skip
            if proc.returncode == 0:
                return server
        log = (root / "server.log").read_text(errors="replace")[-2000:] if (root / "server.log").exists() else ""
        raise PostgresUnavailable(f"pg_ctl start failed 3 times: {proc.stderr.strip()}\n{log}")
    except BaseException:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
        raise


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the session, stopped and deleted at the end."""
    try:
        server = start_server()
    except (PostgresUnavailable, OSError, subprocess.SubprocessError) as exc:
        problem = str(exc)
    else:
        problem = None
    if problem is not None:
        message = f"no PostgreSQL server for the postgres tests: {problem}"
        if os.environ.get("GRADUATE_SKIP_POSTGRES") == "1":
            pytest.skip(message)
        pytest.fail(f"{message}\n(set GRADUATE_SKIP_POSTGRES=1 to skip them)", pytrace=False)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The SQLAlchemy URL of a new, empty database on the session's server."""
    return postgres_server.new_database()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store: a new SQLite file, or a new database on the PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store' / 'graduate.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    """The store at ``store_url``, migrated to head."""
    eng = open_engine(store_url)
    yield eng
    eng.dispose()
