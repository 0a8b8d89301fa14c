"""The one way bcpctl serves HTTP: uvicorn in the main thread, on a socket bound beforehand.

``bcpctl web`` and ``bcpctl serve`` both bind with :func:`bind` first, so a port in use is
one clear error before anything else happens, and then :func:`run` until SIGINT or SIGTERM.
"""

from __future__ import annotations

import signal
import socket
from types import FrameType

import uvicorn
from starlette.types import ASGIApp

from dc.errors import N_, UsageError, os_reason


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT``."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(N_("invalid --listen '{text}': use HOST:PORT, e.g. 127.0.0.1:9464 or [::1]:9464"), text=text)
    return host.strip("[]"), int(port)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(
            N_("cannot listen on {host}:{port}: {strerror}"), host=host, port=port, strerror=os_reason(exc)
        ) from None
    sock.listen(128)
    return sock


def address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def server(app: ASGIApp) -> uvicorn.Server:
    # log_config=None: uvicorn's records go to the root logger, in the format `serve --log-format`
    # chose, instead of a second handler of uvicorn's own. Proxy headers only from loopback: a
    # reverse proxy on the same host may say https.
    return uvicorn.Server(
        uvicorn.Config(
            app,
            log_config=None,
            log_level="warning",
            lifespan="on",
            server_header=False,
            proxy_headers=True,
            forwarded_allow_ips="127.0.0.1",
            timeout_graceful_shutdown=10,
        )
    )


def run(server: uvicorn.Server, sock: socket.socket) -> None:
    """Serve until SIGINT or SIGTERM, which uvicorn handles: it stops, then runs the app's shutdown.

    After a graceful stop uvicorn raises the signal again for the handler it found installed
    (encode/uvicorn#1600); with the default one SIGTERM would kill the process before the
    command reports. The handler installed here only asks the server to stop, so a signal in the
    moment before uvicorn takes over ends the process the same graceful way, and one after it
    does nothing more.
    """

    def stop(_signum: int, _frame: FrameType | None) -> None:
        server.should_exit = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
