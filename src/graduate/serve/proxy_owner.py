"""Which ``graduate proxy`` process a pending proxy call belongs to, and whether that process ended.

A proxy logs each call ``pending`` with its owner tag ``proxy:HOST:PID:START`` before sending it
upstream; a starting proxy fails the calls whose owner has ended (killed before it could finish
them). Only a process on this machine can be checked:

- another host's calls (a replica sharing a PostgreSQL store) are left to it, whatever their age:
  ``pending_elsewhere`` counts them for ``graduate status``, which shows how old they are;
- ``proxy:HOST:PID``, the tag before START was added, is judged by its PID alone: ended when no
  process has that PID (a process that has it now may be another one; its calls are kept, never
  failed while their proxy may still answer them).
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy.engine import Engine

from graduate.store.calls import pending_owners
from graduate.store.runs import process_gone

HOST_CHARS = 32  # so that the tag fits the 64 characters of teacher_calls.lease_owner


def _host() -> str:
    return socket.gethostname()[:HOST_CHARS]


def process_owner() -> str:
    """This process as a call's owner: proxy:HOST:PID:START; the start time tells this process
    from an earlier one that had the same PID."""
    return f"proxy:{_host()}:{os.getpid()}:{time.time_ns() // 1_000_000}"


def _parse(owner: str) -> tuple[str, int] | None:
    """(host, pid) of a proxy owner tag, either format; None for anything else."""
    parts = owner.split(":")
    if len(parts) not in (3, 4) or parts[0] != "proxy" or not parts[2].isdigit():
        return None
    return parts[1], int(parts[2])


def owner_gone(owner: str, *, me: str | None = None) -> bool:
    """Whether the proxy process named by ``owner`` has ended (``me``: this process's own tag)."""
    parsed = _parse(owner)
    if parsed is None or parsed[0] != _host():
        return False
    pid = parsed[1]
    if pid == os.getpid():
        return owner != me  # an earlier process with this PID (an old-format tag is never ours)
    return process_gone(pid)


@dataclass(frozen=True)
class PendingElsewhere:
    """Proxy calls pending with a proxy on another host: not judged here, only counted."""

    host: str
    calls: int
    oldest: datetime  # when the oldest of them was logged (UTC)


def pending_elsewhere(engine: Engine) -> list[PendingElsewhere]:
    """The proxy calls pending with proxies on other hosts, per host, oldest first."""
    by_host: dict[str, tuple[int, datetime]] = {}
    for owner, calls, oldest in pending_owners(engine, "proxy"):
        parsed = _parse(owner)
        if parsed is None or parsed[0] == _host():
            continue
        if oldest.tzinfo is None:  # SQLite keeps no zone; the store writes UTC
            oldest = oldest.replace(tzinfo=timezone.utc)
        n, first = by_host.get(parsed[0], (0, oldest))
        by_host[parsed[0]] = (n + calls, min(first, oldest))
    return sorted((PendingElsewhere(host, n, first) for host, (n, first) in by_host.items()), key=lambda p: p.oldest)
