"""Errors as RFC 9457 problem details (``application/problem+json``), one clear line each.

Every refusal names what is wrong in ``detail``; validation errors also list each field and
its problem in ``errors``. A ``BcpError`` from a core package keeps its operator-facing
message; anything else is a bug and gets a bare 500 without internals (logged here).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from bcpctl.web.errors import Conflict, Forbidden, NotFound, TooManyRequests
from dc.errors import AuthError, BcpError, ConfigError, UsageError
from victim_support.errors import BundleGone, PolicyRejected, RequestNotFound, RequestStateError

log = logging.getLogger("bcpctl.web")

PROBLEM = "application/problem+json"
_TITLES = {
    400: "bad request",
    401: "not authenticated",
    403: "forbidden",
    404: "not found",
    405: "method not allowed",
    409: "conflict",
    410: "gone",
    413: "request body too large",
    415: "unsupported media type",
    422: "invalid request",
    429: "too many requests",
    500: "internal error",
    503: "service unavailable",
}


def status_of(exc: BcpError) -> int:
    """The HTTP status for a core error (the order matters: subclasses first)."""
    for kind, status in (
        (TooManyRequests, 429),
        (NotFound, 404),
        (RequestNotFound, 404),
        (BundleGone, 410),
        (Conflict, 409),
        (RequestStateError, 409),
        (PolicyRejected, 422),
        (Forbidden, 403),
        (AuthError, 401),
        (ConfigError, 503),
        (UsageError, 422),
    ):
        if isinstance(exc, kind):
            return status
    return 503  # ProblemFound: the replica or a repository could not be read right now


def problem(status: int, detail: str, **extra: Any) -> JSONResponse:
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'BCP-Signature realm="bcpctl", Bearer realm="bcpctl"'
    if "retry_after" in extra:
        headers["Retry-After"] = str(max(1, round(extra.pop("retry_after"))))
    body = {"type": "about:blank", "title": _TITLES.get(status, "error"), "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _one_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "error"


def install(app: FastAPI, html: Any) -> None:
    """Register the handlers; ``html(request, status, detail)`` renders pages' errors as a page."""

    def respond(request: Request, status: int, detail: str, **extra: Any) -> Response:
        if not request.url.path.startswith("/api/") and request.url.path != "/openapi.json":
            return html(request, status, detail)
        return problem(status, detail, **extra)

    @app.exception_handler(BcpError)
    async def _bcp(request: Request, exc: BcpError) -> Response:
        status = status_of(exc)
        extra: dict[str, Any] = {}
        if isinstance(exc, TooManyRequests):
            extra["retry_after"] = exc.retry_after
        if isinstance(exc, PolicyRejected) and exc.reasons:
            extra["reasons"] = list(exc.reasons)
        return respond(request, status, _one_line(exc.message), **extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = []
        for error in exc.errors():
            loc = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
            errors.append({"field": loc or "(body)", "problem": str(error.get("msg", "invalid"))})
        first = errors[0] if errors else {"field": "(body)", "problem": "invalid"}
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return respond(request, 422, f"{first['field']}: {first['problem']}{more}", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "error")
        return respond(request, exc.status_code, detail)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> Response:
        log.error("%s %s failed: %s", request.method, request.url.path, type(exc).__name__, exc_info=exc)
        return respond(request, 500, "internal error (logged on the server)")
