"""Errors as RFC 9457 problem details (``application/problem+json``), one clear line each.

Every refusal names what is wrong in ``detail``, in the language ``Accept-Language`` asks
for (Japanese or English), and in English in ``detail_en`` whatever the request asked, so a
program keeps one stable text; ``title`` stays the English status phrase. Validation errors
also list each field and its problem in ``errors``. A ``BcpError`` from a core package keeps
its operator-facing message (translated by :mod:`bcpctl.web.messages`, server paths hidden);
a 5xx says only that the server has trouble, and anything else is a bug and gets a bare 500
without internals (logged here). Pages show the same lines, Japanese first.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from bcpctl.web import messages
from bcpctl.web.errors import Conflict, Forbidden, NotFound, TooManyRequests
from dc.errors import N_, AuthError, BcpError, ConfigError, Message, UsageError
from victim_support.errors import BundleGone, PolicyRejected, RequestNotFound, RequestStateError

log = logging.getLogger("bcpctl.web")

PROBLEM = "application/problem+json"
_TITLES = {
    400: N_("bad request"),
    401: N_("not authenticated"),
    403: N_("forbidden"),
    404: N_("not found"),
    405: N_("method not allowed"),
    409: N_("conflict"),
    410: N_("gone"),
    413: N_("request body too large"),
    415: N_("unsupported media type"),
    422: N_("invalid request"),
    429: N_("too many requests"),
    500: N_("internal error"),
    503: N_("service unavailable"),
}
INTERNAL = N_("internal error (logged on the server)")


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


def install(app: FastAPI, html: Any) -> None:
    """Register the handlers; ``html(request, status, detail)`` renders pages' errors as a page
    (``detail`` the error or :class:`~dc.errors.Message`, shown in Japanese and English)."""

    def respond(request: Request, status: int, detail: BcpError | Message, **extra: Any) -> Response:
        if status >= 500 and isinstance(detail, BcpError):
            detail = messages.unavailable(detail, f"{request.method} {request.url.path}")
        if not request.url.path.startswith("/api/") and request.url.path != "/openapi.json":
            return html(request, status, detail)
        lang = messages.request_language(request)
        shown, english = messages.in_language(detail, lang)
        if "reasons" in extra:
            extra["reasons_en"] = [messages.in_language(r, "en")[1] for r in extra["reasons"]]
            extra["reasons"] = [messages.in_language(r, lang)[0] for r in extra["reasons"]]
        response = problem(status, shown, detail_en=english, **extra)
        response.headers["Content-Language"] = lang
        response.headers["Vary"] = "Accept-Language"
        return response

    @app.exception_handler(BcpError)
    async def _bcp(request: Request, exc: BcpError) -> Response:
        status = status_of(exc)
        extra: dict[str, Any] = {}
        if isinstance(exc, TooManyRequests):
            extra["retry_after"] = exc.retry_after
        if isinstance(exc, PolicyRejected) and exc.reasons:
            extra["reasons"] = list(exc.reasons)
        return respond(request, status, exc, **extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        lang = messages.request_language(request)
        raw = exc.errors() or [{"msg": "invalid"}]
        found = [messages.field_problem(error) for error in raw]
        errors = [
            {
                "field": line.params["field"],
                "problem": messages.in_language(line.params["problem"], lang)[0],  # type: ignore[arg-type]
                "problem_en": str(line.params["problem"]),
            }
            for line in found
        ]
        more = Message(N_(" (and {count} more)"), count=len(found) - 1) if len(found) > 1 else ""
        return respond(request, 422, messages.field_problem(raw[0], more), errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        title = _TITLES.get(exc.status_code, "error")
        # Starlette's own details are the status phrase ("Not Found"): the marked title instead
        plain = not isinstance(exc.detail, str) or exc.detail.lower() == title
        return respond(request, exc.status_code, Message(title if plain else exc.detail))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> Response:
        log.error("%s %s failed: %s", request.method, request.url.path, type(exc).__name__, exc_info=exc)
        return respond(request, 500, Message(INTERNAL))
