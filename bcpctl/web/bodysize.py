"""Refuse request bodies over the configured size before anything parses them (HTTP 413).

A declared ``Content-Length`` over the limit is refused at once; a chunked body is counted
as it arrives and cut off when it passes the limit, so no handler ever buffers more. The
limit is small (request JSON and forms, never uploads), so the body is read in full here and
replayed to the application.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.requests import Request

from bcpctl.web import messages
from dc import errors

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

TOO_LARGE = errors.N_("the request body exceeds {limit} bytes")


def _problem(limit: int, scope: Scope) -> bytes:
    """The 413 as the other problems are: ``detail`` by ``Accept-Language``, ``detail_en`` English."""
    lang = messages.request_language(Request(scope))
    detail, english = messages.in_language(errors.Message(TOO_LARGE, limit=limit), lang)
    body = {"type": "about:blank", "title": "request body too large", "status": 413, "detail": detail}
    return json.dumps({**body, "detail_en": english}, ensure_ascii=False).encode()


class BodySizeLimit:
    def __init__(self, app: App, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await self._refuse(send, 400, b'{"title": "invalid Content-Length", "status": 400}')
                return
            if int(declared) > self.max_bytes:
                await self._refuse(send, 413, _problem(self.max_bytes, scope))
                return
        # Read the body (at most max_bytes + one message) before the application sees any of it:
        # an exception raised from inside the application would become a 500, not a 413.
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_bytes:
                await self._refuse(send, 413, _problem(self.max_bytes, scope))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(send: Send, status: int, body: bytes) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
