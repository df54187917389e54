"""Joining a Ray cluster (graduate predict --ray, graduate label --ray): a local one started here,
or an existing one at its address, checked first so that a dead address fails at once."""

from __future__ import annotations

import socket
from urllib.parse import urlparse

from graduate.errors import NotReadyError


def connect(address: str, *, num_cpus: int | None = None) -> None:
    """Join the Ray cluster at ``address`` (``local``: start one in this process, with ``num_cpus``)."""
    try:
        import ray
    except ImportError:
        raise NotReadyError("--ray needs Ray: pip install 'graduate[ray]'") from None
    if ray.is_initialized():
        return
    if address == "local":
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
        return
    _check_reachable(address)
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    except ConnectionError as exc:  # `auto` with no cluster running on this machine
        raise NotReadyError(f"no Ray cluster at {address} ({' '.join(str(exc).split())}); start one (`ray start --head`) or pass --ray local") from None


def _check_reachable(address: str) -> None:
    """A cluster that does not answer fails at once in one line (ray.init would retry for minutes)."""
    if address == "auto":
        return
    parsed = urlparse(address if "://" in address else f"ray://{address}")
    try:
        host, port = parsed.hostname, parsed.port
    except ValueError:  # a port that is not a number
        host, port = None, None
    if not host or not port:
        raise NotReadyError(f"Ray address {address!r} is not host:port (or ray://host:port, auto, local)")
    try:
        with socket.create_connection((host, port), timeout=5):
            pass
    except OSError as exc:
        raise NotReadyError(f"the Ray cluster at {address} does not answer ({exc}); start it (`ray start --head`) or pass --ray local") from None
