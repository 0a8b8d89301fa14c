"""A small route table served by the standard library's threading HTTP server.

Handlers are plain functions from :class:`Request` to :class:`Response`, so the same
handlers can be mounted on another server later (the web surface may bring an ASGI app and
serve these routes beside its own); :class:`HttpServer` is only the default way to serve them.
A scrape never blocks another: each request gets its own thread.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

from dc.errors import UsageError

log = logging.getLogger("bcpctl.http")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Response]


class Surface(Protocol):
    """What serves the routes: :class:`HttpServer` by default, or e.g. an ASGI server running
    the web surface with :func:`monitoring.asgi.asgi_app` mounted."""

    @property
    def address(self) -> tuple[str, int]: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


SurfaceFactory = Callable[["Routes", str, int], Surface]


class Routes:
    """Exact paths, plus prefixes for sub-applications mounted under a path."""

    def __init__(self) -> None:
        self._exact: dict[tuple[str, str], Handler] = {}
        self._prefixes: list[tuple[str, Handler]] = []

    def add(self, path: str, handler: Handler, methods: tuple[str, ...] = ("GET", "HEAD")) -> None:
        for method in methods:
            self._exact[(method, path)] = handler

    def mount(self, prefix: str, handler: Handler) -> None:
        self._prefixes.append((prefix.rstrip("/") + "/", handler))
        self._prefixes.sort(key=lambda item: -len(item[0]))

    def paths(self) -> list[str]:
        return sorted({path for _method, path in self._exact} | {prefix for prefix, _h in self._prefixes})

    def dispatch(self, request: Request) -> Response:
        handler = self._exact.get((request.method, request.path))
        if handler is None:
            handler = next((h for prefix, h in self._prefixes if request.path.startswith(prefix)), None)
        if handler is None:
            if any(path == request.path for _m, path in self._exact):
                return Response(405, b"method not allowed\n")
            return Response(404, b"not found\n")
        try:
            return handler(request)
        except Exception as exc:  # a failing page must not take the server down
            log.warning("%s %s failed: %s", request.method, request.path, type(exc).__name__)
            return Response(500, b"internal error\n")


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT``."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"invalid --listen '{text}': use HOST:PORT, e.g. 127.0.0.1:9464")
    return host.strip("[]"), int(port)


class HttpServer:
    def __init__(self, routes: Routes, host: str, port: int) -> None:
        self.routes = routes
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            server_version = "bcpctl"

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                request = Request(
                    self.command, parts.path, parse_qs(parts.query), {k.lower(): v for k, v in self.headers.items()}
                )
                response = outer.routes.dispatch(request)
                self.send_response(response.status)
                self.send_header("Content-Type", response.content_type)
                self.send_header("Content-Length", str(len(response.body)))
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(response.body)

            do_GET = do_HEAD = do_POST = _serve

            def log_message(self, format: str, *args: object) -> None:
                log.debug("http: " + format, *args)

        server_class: type[ThreadingHTTPServer] = ThreadingHTTPServer
        if ":" in host:

            class _Ipv6Server(ThreadingHTTPServer):
                address_family = socket.AF_INET6

            server_class = _Ipv6Server
        try:
            self._server = server_class((host, port), _Handler)
        except OSError as exc:
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, name="bcp-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
