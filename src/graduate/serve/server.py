"""Run an app under uvicorn on a socket bound beforehand (so port 0 can be reported before serving),
with a graceful SIGTERM: stop accepting, finish in-flight requests (up to a timeout), then run the
app's shutdown, which writes the traffic log out.

uvicorn bounds idle keep-alive connections but not the time a client takes to send a request's
headers: a connection that trickles them (or sends nothing) stays open for good. The protocol here
is uvicorn's own (httptools) with one timer added: the request line and headers must arrive within
``header_timeout_s`` of the connection or of the request's first byte, else the client gets 408
and the connection is closed. (The body's deadline is ``graduate.serve.limits.BodySizeLimit``.)
"""

from __future__ import annotations

import socket
import sys
from typing import Any

from graduate.errors import ListenError


def bind_socket(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A listening socket; port 0 picks a free port (see ``sock.getsockname()``). ListenError when
    the OS refuses the address (in use, not this machine's, privileged)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ListenError(host, port, exc) from None
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


_TIMEOUT_BODY = b'{"error":{"message":"the request headers did not arrive in time","type":"invalid_request_error","param":null,"code":"request_timeout"}}'
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"content-length: " + str(len(_TIMEOUT_BODY)).encode() + b"\r\n\r\n" + _TIMEOUT_BODY
)


def protocol_with_header_timeout(header_timeout_s: float) -> Any:
    """uvicorn's httptools protocol, closing connections whose headers are slower than the limit
    ("auto" when httptools is not installed: then only the body's deadline holds)."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return "auto"

    class HeaderTimeoutProtocol(HttpToolsProtocol):  # type: ignore[misc, valid-type]
        _header_timer: Any = None

        def _arm(self) -> None:
            if self._header_timer is None:
                self._header_timer = self.loop.call_later(header_timeout_s, self._headers_too_slow)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                self.transport.write(_TIMEOUT_RESPONSE)
                self.transport.close()

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeaderTimeoutProtocol


def run_app(
    app: Any, sock: socket.socket, *, shutdown_timeout_s: float = 30.0, header_timeout_s: float = 10.0, log_level: str = "warning"
) -> None:
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
        http=protocol_with_header_timeout(header_timeout_s),
    )
    uvicorn.Server(config).run(sockets=[sock])
