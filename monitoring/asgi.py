"""The same route table as an ASGI application, for a web surface that brings its own server.

The operator dashboard and partner portal (FastAPI/Starlette) will run in this process and be
served by an ASGI server; they mount this app (``app.mount("/", asgi_app(routes))`` or per
path) so ``/metrics``, ``/healthz`` and ``/readyz`` keep one implementation whichever server
answers. Handlers are synchronous and may touch the database, so each runs in a worker thread
instead of blocking the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from monitoring.http import Request, Routes

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def asgi_app(routes: Routes) -> AsgiApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        request = Request(
            scope["method"],
            scope["path"],
            parse_qs(scope.get("query_string", b"").decode("latin-1")),
            {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope.get("headers", [])},
        )
        response = await asyncio.get_running_loop().run_in_executor(None, routes.dispatch, request)
        headers = [(b"content-type", response.content_type.encode("latin-1"))]
        headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()]
        headers.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        body = b"" if scope["method"] == "HEAD" else response.body
        await send({"type": "http.response.body", "body": body})

    return app
