"""The web app and another ASGI app (monitoring's routes) on one port, as `bcpctl serve` mounts it."""

from __future__ import annotations

import urllib.request
from typing import Any

from bcpctl.web.surface import beside


async def _metrics(scope: Any, receive: Any, send: Any) -> None:
    body = f"served {scope['path']}\n".encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


def test_monitoring_paths_and_the_web_share_one_server(web_ctx: Any) -> None:
    from bcpctl.web.app import create_app
    from bcpctl.web.server import WebServer

    app = beside(create_app(web_ctx), _metrics, ["/metrics", "/healthz", "/readyz"])
    server = WebServer(app, "127.0.0.1", 0)
    server.start()
    try:
        base = "http://{}:{}".format(*server.address)
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
            assert response.read() == b"served /metrics\n"
        with urllib.request.urlopen(f"{base}/openapi.json", timeout=5) as response:
            assert b"/api/operator/status" in response.read()
    finally:
        server.stop()
