"""Run an app under uvicorn on a socket bound beforehand (so port 0 can be reported before serving),
with a graceful SIGTERM: stop accepting, finish in-flight requests (up to a timeout), then run the
app's shutdown, which writes the traffic log out."""

from __future__ import annotations

import socket
import sys
from typing import Any


def bind_socket(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A listening socket; port 0 picks a free port (see ``sock.getsockname()``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def run_app(app: Any, sock: socket.socket, *, shutdown_timeout_s: float = 30.0, log_level: str = "warning") -> None:
    """Serve until SIGTERM/SIGINT. Blocks."""
    import uvicorn

    # The event loop shares the interpreter with the threads that predict and write traffic; a
    # shorter switch interval lets it answer (429s, health checks) within a millisecond or so
    # instead of the default 5 ms. This process is the server, so the setting is ours to make.
    sys.setswitchinterval(0.0005)
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=int(max(1, round(shutdown_timeout_s))),
        backlog=2048,
        lifespan="on",
        server_header=False,
    )
    uvicorn.Server(config).run(sockets=[sock])
