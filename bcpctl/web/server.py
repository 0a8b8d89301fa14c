"""Serving the app with uvicorn: in the foreground (``bcpctl web``) or in a thread beside the scheduler.

The listening socket is bound here first, so a port in use is one clear error instead of a
uvicorn log line and an exit from inside a thread. :class:`WebServer` has the
``address``/``start``/``stop`` shape that ``bcpctl serve``'s pluggable surface expects.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from dc.errors import UsageError


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT``."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"invalid --listen '{text}': use HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]"), int(port)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _config(app: Any) -> Any:
    import uvicorn

    # proxy headers only from loopback: a reverse proxy on the same host may say https.
    return uvicorn.Config(
        app,
        log_level="warning",
        lifespan="off",
        server_header=False,
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        timeout_graceful_shutdown=10,
    )


def run_forever(app: Any, sock: socket.socket) -> None:
    """Serve until SIGINT or SIGTERM (uvicorn's own handlers)."""
    import uvicorn

    uvicorn.Server(_config(app)).run(sockets=[sock])


class WebServer:
    """uvicorn in a daemon thread."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        import uvicorn

        self._sock = bind(host, port)
        self._server = uvicorn.Server(_config(app))
        # Signals belong to the process's owner (bcpctl serve), not to this thread.
        self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    def start(self, timeout: float = 10.0) -> None:
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="bcp-web", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise UsageError("the web server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(15)
        self._sock.close()
