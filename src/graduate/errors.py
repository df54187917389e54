"""Every error graduate raises on purpose.

    GraduateError                 root: catch this to catch them all
    ├── SpecError                 graduate.yaml is missing, malformed or invalid (path, field)
    ├── InputDataError            a CSV/JSONL input is unusable (path, line, column)
    ├── StoreError                the database cannot be opened or migrated (url)
    │   └── StoreLockedError      another process held the store's lock past the busy wait (url)
    ├── TeacherError              a teacher call failed for good (attempts)
    │   ├── TeacherTransientError one attempt failed in a retryable way (status, retry_after_s)
    │   ├── BudgetExceededError   the spec's budget_usd would be exceeded (spent, budget)
    │   ├── TeacherAuthError      the teacher refused the API key (api_key_env, base_url)
    │   │   └── TeacherQuotaError the key's account is out of quota (HTTP 429 insufficient_quota)
    │   └── BatchError            the Batch API refused a file or batch, or a batch is not this project's (batch)
    ├── LocalTeacherError         the local teacher cannot start: model file, llama.cpp server, port
    ├── StudentError              a student cannot be trained, saved or loaded (kind)
    ├── TestSetChangedError       a frozen test set's content changed without a new version (name, version)
    ├── ListenError               a server cannot listen on its address: port in use, no such address (host, port)
    └── NotReadyError             a step needs an earlier one first (the command to run)

Each message says what failed, where, and what to do about it, on one line.
"""

from __future__ import annotations

import errno
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, TextIO


class GraduateError(Exception):
    """Root of every error graduate raises on purpose."""

    def __reduce__(self) -> tuple:
        # Rebuilt from its message and fields, not by calling __init__ again (most take keywords, and
        # some prefix the message): a Ray worker raises these in another process, and the driver
        # reports them as the same one line.
        # The fields go as state, set after the object exists, so a field that holds the error itself
        # (SpecError.problems) comes back holding the copy.
        return _rebuilt, (type(self), self.args), dict(vars(self))


def _rebuilt(cls: type, args: tuple) -> "GraduateError":
    exc = cls.__new__(cls)
    Exception.__init__(exc, *args)
    return exc


class SpecError(GraduateError):
    def __init__(self, message: str, *, path: Path | str | None = None, field: str | None = None):
        self.path = str(path) if path is not None else None
        self.field = field
        self.problems: list["SpecError"] = [self]
        where = self.path or ("option" if field and field.startswith("--") else "spec")
        if field:
            where = f"{where}: {field}"
        super().__init__(f"{where}: {message}")

    @classmethod
    def several(cls, problems: list["SpecError"]) -> "SpecError":
        """One error for many problems: the first's fields, every problem on a line of its own."""
        first = problems[0]
        if len(problems) == 1:
            return first
        err = cls.__new__(cls)
        Exception.__init__(err, "\n".join(str(p) for p in problems))
        err.path, err.field, err.problems = first.path, first.field, list(problems)
        return err


class InputDataError(GraduateError):
    def __init__(
        self,
        message: str,
        *,
        path: Path | str,
        line: int | None = None,
        column: str | None = None,
    ):
        self.path = str(path)
        self.line = line
        self.column = column
        self.reason = message  # without the file, line and column
        where = self.path
        if line is not None:
            where = f"{where}:{line}"
        if column is not None:
            where = f"{where} (column {column!r})"
        super().__init__(f"{where}: {message}")

    @classmethod
    def repeated_column(cls, name: str, *, path: Path | str, line: int | None = None) -> InputDataError:
        """A header that names a column twice (a row read as a dict would keep only the last of them)."""
        return cls(f"the header names column {name!r} more than once; rename the other one", path=path, line=line, column=name)


def check_output_file(path: Path | str) -> None:
    """Refuse, before any work, an output path that cannot become a file: a folder, or a path under
    a file (InputDataError naming it and the fix). Its missing folders are made."""
    p = Path(path)
    if p.is_dir():
        raise InputDataError("is a folder; give a file name for the output, e.g. a name inside it", path=p)
    blocker = next((q for q in p.parents if q.exists() and not q.is_dir()), None)
    if blocker is not None:
        raise InputDataError(f"{blocker} is a file, not a folder; write the output elsewhere", path=p)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputDataError(f"cannot create its folder ({exc.strerror}); write the output elsewhere", path=p) from None


@contextmanager
def written_whole(path: Path | str, *, newline: str | None = None) -> Iterator[TextIO]:
    """Open ``path`` for writing through a temporary file of its own beside it, renamed over
    ``path`` when the block ends: a reader never sees half a file, and two writers at once each
    leave a whole one (the last wins). The temporary file is removed if the block fails."""
    import os
    import tempfile

    p = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as f:
            yield f
        os.replace(name, p)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


class StoreError(GraduateError):
    def __init__(self, message: str, *, url: str | None = None):
        self.url = url
        super().__init__(f"store {url}: {message}" if url else message)


class StoreLockedError(StoreError):
    """Another process held the store's lock past the busy wait (SQLite), or the server gave up
    waiting for a lock (PostgreSQL: lock_timeout, deadlock, serialization failure). The transaction
    that met it rolled back: nothing stored is lost, and running the command again resumes."""

    def __init__(self, *, url: str, where: str):
        self.where = where  # the SQLite file, or the URL without its password
        StoreError.__init__(self, f"could not lock the store {where} in time: another graduate command, a server or a database client holds it (or a deadlock); wait for it to finish or stop it, then run this again")
        self.url = url


class TeacherError(GraduateError):
    def __init__(self, message: str, *, attempts: int | None = None):
        self.attempts = attempts
        super().__init__(message)


class TeacherTransientError(TeacherError):
    """One attempt failed in a way worth retrying (408/409/429/5xx, timeout, connection); raised by
    a backend for a single attempt, and again once the retries are spent."""

    def __init__(self, message: str, *, status: int | None = None, retry_after_s: float | None = None, attempts: int | None = None):
        self.status = status
        self.retry_after_s = retry_after_s
        self.detail = message
        super().__init__(message, attempts=attempts)

    @property
    def rate_limited(self) -> bool:
        return self.status == 429


def usd(amount: float) -> str:
    """A dollar amount as a person sets it: cents above a cent ($5.00), else the digits it has
    ($0.004, not $0.00)."""
    if abs(amount) >= 0.01 or amount == 0:
        return f"${amount:.2f}"
    return "$" + f"{amount:.8f}".rstrip("0").rstrip(".")


class BudgetExceededError(TeacherError):
    def __init__(self, *, spent: float, budget: float, needed: float):
        self.spent = spent
        self.budget = budget
        self.needed = needed
        super().__init__(
            f"teacher budget reached: ${spent:.4f} spent of {usd(budget)}, the next call needs "
            f"~${needed:.4f}; raise teacher.budget_usd in graduate.yaml to go on"
        )


class TeacherAuthError(TeacherError):
    """The teacher refused the API key: every call would fail alike, so labelling stops."""

    def __init__(self, *, api_key_env: str, base_url: str, detail: str, missing: bool = False):
        self.api_key_env = api_key_env
        self.base_url = base_url
        self.missing = missing
        if missing:
            message = f"no API key for the teacher at {base_url}: {api_key_env} is not set, so nothing was sent; set it and run again"
        else:
            message = f"the teacher at {base_url} refused the API key ({detail}); set {api_key_env} to a valid key and run again"
        super().__init__(message, attempts=1 if not missing else 0)


class TeacherQuotaError(TeacherAuthError):
    """The provider refuses every call on this key's account until its plan or billing changes
    (HTTP 429 with code insufficient_quota): retrying cannot help, so labelling stops like on a
    refused key."""

    def __init__(self, *, api_key_env: str, base_url: str, detail: str):
        self.api_key_env = api_key_env
        self.base_url = base_url
        self.missing = False
        TeacherError.__init__(
            self,
            f"the teacher at {base_url} refuses calls: the account of the key in {api_key_env} is out of quota ({detail}); "
            "check its plan and billing, then run again (answered items are kept)",
            attempts=1,
        )


class BatchError(TeacherError):
    """A Batch API step failed for good (upload, create, retrieve, cancel, download), or names a
    batch this project did not submit. Nothing stored is lost: running the command again resumes."""

    def __init__(self, message: str, *, batch: str | None = None):
        self.batch = batch
        super().__init__(message, attempts=1)


class LocalTeacherError(GraduateError):
    """The local teacher cannot start (bad or missing model file, server that will not come up,
    port in use). Not a TeacherError: it stops labelling at once instead of failing each call."""


class StudentError(GraduateError):
    def __init__(self, message: str, *, kind: str | None = None):
        self.kind = kind
        super().__init__(f"student {kind}: {message}" if kind else message)


class TestSetChangedError(GraduateError):
    """A frozen test set now holds other items or gold labels than when it was frozen."""

    __test__ = False  # not a pytest class

    def __init__(
        self, *, name: str, version: int, frozen_hash: str, frozen_size: int, current_hash: str, current_size: int, next_version: int
    ):
        self.name = name
        self.version = version
        self.frozen_hash = frozen_hash
        self.current_hash = current_hash
        super().__init__(
            f"test set {name!r} version {version} changed since it was frozen ({frozen_size} items, hash {frozen_hash[:12]} -> "
            f"{current_size} items, hash {current_hash[:12]}); results would not be comparable. If the change is intended, "
            f"declare a new version in graduate.yaml: test_sets: - {{name: {name}, version: {next_version}, ...}}"
        )


class ListenError(GraduateError):
    """``graduate serve`` or ``graduate proxy`` cannot listen on host:port (the OS refused the bind)."""

    def __init__(self, host: str, port: int, error: OSError):
        self.host, self.port = host, port
        fix = {
            errno.EADDRINUSE: "another process listens there: pick another port with --port (0 picks a free one)",
            errno.EACCES: "ports under 1024 need privileges: pick a higher one with --port",
            errno.EADDRNOTAVAIL: "no interface of this machine has that address: pick another with --host (127.0.0.1, or 0.0.0.0 for all)",
        }.get(error.errno or 0, "pick another address with --host or --port")
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        super().__init__(f"cannot listen on {address}: {error.strerror or error}; {fix}")


class NotReadyError(GraduateError):
    """A step needs an earlier step first; the message names the command to run."""


class BusyError(GraduateError):
    """Another process holds the project's work lock; the message names it."""


class PrivacyError(GraduateError):
    """A privacy request that cannot be done: redaction without its library, forget without a
    target or with an unknown one."""
