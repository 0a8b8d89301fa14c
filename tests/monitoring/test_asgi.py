"""The route table as an ASGI app: what a FastAPI/Starlette surface would mount."""

from __future__ import annotations

import asyncio
from typing import Any

from monitoring.asgi import asgi_app
from monitoring.http import Response, Routes


def call(app, scope: dict[str, Any]) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    sent: list[dict[str, Any]] = []
    incoming = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def test_asgi_serves_the_same_handlers() -> None:
    routes = Routes()
    routes.add(
        "/readyz",
        lambda r: Response(
            200, r.headers.get("accept", "").encode() + r.query["x"][0].encode(), "text/plain", {"X-Role": "leader"}
        ),
    )
    app = asgi_app(routes)
    start, body = call(
        app,
        {
            "type": "http",
            "method": "GET",
            "path": "/readyz",
            "query_string": b"x=1",
            "headers": [(b"Accept", b"text/plain")],
        },
    )
    assert start["status"] == 200
    assert (b"x-role", b"leader") in start["headers"] and (b"content-length", b"11") in start["headers"]
    assert body["body"] == b"text/plain1"
    missing, _ = call(app, {"type": "http", "method": "GET", "path": "/nope", "query_string": b"", "headers": []})
    assert missing["status"] == 404
    head_start, head_body = call(
        app, {"type": "http", "method": "HEAD", "path": "/readyz", "query_string": b"x=2", "headers": []}
    )
    assert head_start["status"] == 200 and head_body["body"] == b""


def test_asgi_lifespan_is_acknowledged() -> None:
    app = asgi_app(Routes())
    sent: list[dict[str, Any]] = []
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app({"type": "lifespan"}, receive, send))
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
