"""The web app beside other routes in one server: how ``bcpctl serve`` mounts it.

``bcpctl serve`` (monitoring) builds its route table (``/metrics``, ``/healthz``,
``/readyz``) and asks a *surface factory* ``(routes, host, port) -> server`` to serve it.
:func:`web_surface` is such a factory: it serves this web app with uvicorn and hands the
monitoring paths to the route table's own ASGI app, so one process and one port serve both::

    run_service(config_path, listen, settings, surface=web_surface(config_path))

Any ASGI app can be placed beside the web app the same way (:func:`beside`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from bcpctl.web.bodysize import App, Receive, Scope, Send
from bcpctl.web.server import WebServer


def beside(web: App, other: App, paths: Iterable[str]) -> App:
    """One ASGI app: exact ``paths`` (and prefixes ending in ``/``) go to ``other``, the rest to ``web``."""
    exact = {p for p in paths if not p.endswith("/")}
    prefixes = tuple(p for p in paths if p.endswith("/"))

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and (path in exact or (prefixes and path.startswith(prefixes))):
            await other(scope, receive, send)
        else:
            await web(scope, receive, send)

    return app


def web_surface(config_path: str | Path | None) -> Callable[[Any, str, int], WebServer]:
    """A surface factory for ``bcpctl serve``: the web app plus the given route table, on one port."""

    def factory(routes: Any, host: str, port: int) -> WebServer:
        from bcpctl.web.app import create_app
        from bcpctl.web.context import WebContext
        from monitoring.asgi import asgi_app  # type: ignore[import-not-found]

        app = beside(create_app(WebContext.load(config_path)), asgi_app(routes), routes.paths())
        return WebServer(app, host, port)

    return factory
