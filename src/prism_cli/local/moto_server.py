"""Make moto's server cheap per request: routing once per host, and connections kept open.

moto's server hands every request to ``DomainDispatcherApplication.get_application``,
which finds the service's backend under one lock shared by all the server's threads. To
find it, ``get_backend_for_host`` lists moto's package folder (some 200 entries, each
checked with ``os.path.isdir``) and then tries the URL patterns of every service in turn.
Under a local run's load that is the largest single cost of the server, and it serialises
requests that moto's backends could answer concurrently.

The answer depends only on the host name the request is routed by (derived from the
request's signature, path or target header, which is still done per request), and moto's
package folder does not change while it runs, so it is remembered per host here.

werkzeug's development server also answers every request with ``Connection: close``, so
each request is a new TCP connection, and a new server thread, on both sides. It does so
because ``http.server`` cannot tell where an unread request body ends and the next request
begins. The server here keeps HTTP/1.1 connections open instead, and reads whatever of a
request's body the application left unread before it takes the next request from the
connection (a body without a length, chunked, still closes the connection).
"""

from __future__ import annotations

import functools
import selectors
import socket
import threading
from collections.abc import Callable
from typing import Any

from prism_cli.local.moto_locking import applied_once

_lock = threading.RLock()
# How often the server's loop checks whether it was asked to stop (werkzeug: 0.5 s).
SHUTDOWN_POLL_SECONDS = 0.05


@applied_once(_lock)
def route_requests_once() -> None:
    """Patch this process's moto server dispatch (idempotent)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from werkzeug import serving

    DomainDispatcherApplication.get_backend_for_host = _remembered(  # type: ignore[method-assign, assignment]
        DomainDispatcherApplication.get_backend_for_host
    )
    vars(serving)["selectors"] = _Selectors()  # werkzeug.serving uses it for one drain only


_MISSING = object()


def _remembered(find: Callable[[Any, str | None], Any]) -> Callable[[Any, str | None], Any]:
    known: dict[str | None, Any] = {}

    @functools.wraps(find)
    def get_backend_for_host(self: Any, host: str | None) -> Any:
        backend = known.get(host, _MISSING)
        if backend is _MISSING:
            backend = known[host] = find(self, host)
        return backend

    return get_backend_for_host


# Set in a server thread while it answers a request on a connection it keeps open.
_keeping_open = threading.local()


class _NothingToRead:
    """A selector that never finds data: werkzeug's drain after each response (meant for
    connections it closes) leaves a kept-open connection's next request alone."""

    def register(self, *args: Any, **kwargs: Any) -> None:
        pass

    def select(self, timeout: float | None = None) -> list[Any]:
        return []

    def close(self) -> None:
        pass


class _Selectors:
    """The ``selectors`` module as ``werkzeug.serving`` sees it (it uses it for that drain
    only)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(selectors, name)

    def DefaultSelector(self) -> Any:
        if getattr(_keeping_open, "active", False):
            return _NothingToRead()
        return selectors.DefaultSelector()


class _Body:
    """A request body of known length, read through; what is left can be drained."""

    def __init__(self, stream: Any, length: int) -> None:
        self._stream = stream
        self._left = length

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0 or size > self._left:
            size = self._left
        data = self._stream.read(size) if size else b""
        self._left -= len(data)
        return bytes(data)

    def readline(self, size: int = -1) -> bytes:
        if size is None or size < 0 or size > self._left:
            size = self._left
        data = self._stream.readline(size) if size else b""
        self._left -= len(data)
        return bytes(data)

    def __iter__(self) -> Any:
        return iter(self.readline, b"")

    def drain(self) -> bool:
        """Read the rest of the body; whether the connection is at its end."""
        while self._left > 0:
            if not self.read(min(self._left, 1 << 16)):
                return False  # the client went away
        return True


def threaded_server(ip_address: str, port: int) -> Any:
    """moto's ``ThreadedMotoServer`` with keep-alive connections (see the module doc),
    whose ``stop`` returns within :data:`SHUTDOWN_POLL_SECONDS` rather than werkzeug's half
    second."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    class KeepAliveHandler(MotoRequestHandler):
        _body: _Body | None = None

        def setup(self) -> None:
            super().setup()
            # A response goes out in several writes: without this, on a connection that
            # stays open, the last of them waits for the client's delayed ACK (~40 ms).
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _make_environ(self) -> dict[str, Any]:
            environ = super().make_environ()
            self._body = None
            if not environ.get("wsgi.input_terminated"):  # not chunked
                try:
                    length = int(environ.get("CONTENT_LENGTH") or 0)
                except ValueError:
                    length = -1
                if length >= 0:
                    self._body = _Body(environ["wsgi.input"], length)
                    environ["wsgi.input"] = self._body
            return environ

        def send_header(self, keyword: str, value: str) -> None:
            closing = keyword.lower() == "connection" and value.lower() == "close"
            if closing and self._body is not None:
                return  # kept open: HTTP/1.1's default
            super().send_header(keyword, value)

        def make_environ(self) -> dict[str, Any]:
            environ = self._make_environ()
            _keeping_open.active = self._body is not None
            return environ

        def run_wsgi(self) -> None:
            self._body = None
            try:
                super().run_wsgi()
            finally:
                _keeping_open.active = False
                if self._body is None or not self._body.drain():
                    self.close_connection = True
                self._body = None

    class Server(ThreadedMotoServer):
        def _server_entry(self) -> None:
            # moto's own, with the handler above and the poll interval given.
            app = DomainDispatcherApplication(create_backend_app)
            self._server = make_server(
                self._ip_address, self._port, app, True, request_handler=KeepAliveHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever(poll_interval=SHUTDOWN_POLL_SECONDS)

    return Server(ip_address=ip_address, port=port, verbose=False)
