"""The web application: partner API and portal, operator API and dashboard, in one ASGI app.

``create_app(WebContext.load(path))`` gives a FastAPI app that any ASGI server can run:
``bcpctl web`` serves it alone with uvicorn, ``bcpctl serve --web`` mounts it beside
``/metrics``, ``/healthz`` and ``/readyz`` (:mod:`bcpctl.serve_app`). OpenAPI is published at ``/openapi.json``.
The runbooks (``/runbook/ja``, ``/runbook/en``) are served by both, so an alert's link opens
whichever process runs.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from bcpctl import runbook
from bcpctl.web import (
    api_operator,
    api_partner,
    dashboard,
    guide,
    login,
    pages,
    portal,
    portal_enrol,
    portal_evacuees,
    portal_practice,
    problems,
)
from bcpctl.web.bodysize import BodySizeLimit
from bcpctl.web.context import WebContext
from bcpctl.web.headers import SecurityHeaders
from victim_support import partnersig

DESCRIPTION = f"""
Partner portal and operator dashboard of bcpctl.

**Partners** sign requests with the Ed25519 key registered as `partners.<id>.verify_key`:
an OpenSSH signature (namespace `{partnersig.NAMESPACE}`, so `ssh-keygen -Y sign` works) over

    {partnersig.VERSION}
    METHOD
    PATH[?QUERY]   (the request target as sent, percent-encoded)
    PARTNER
    UNIX-SECONDS
    NONCE
    SHA-256-HEX-OF-BODY

(each line ending in a newline), sent as `X-BCP-Partner`, `X-BCP-Timestamp`, `X-BCP-Nonce`
and `X-BCP-Signature` (the armored signature's base64 body on one line). Submitting a request
must be signed; other partner calls also accept `Authorization: Bearer <token>` with a token
an operator issued. Partners only ever receive age-encrypted bundles.

**Operators** use HTTP Basic with their account, a login session (pages; state changes then
need the `X-CSRF-Token` header), or an authenticating reverse proxy when configured.

Errors are RFC 9457 problem details with a one-line `detail` in the language `Accept-Language`
asks for (`ja` or English) and the same line in English in `detail_en`, whatever was asked.
"""


def create_app(ctx: WebContext) -> Any:
    """The ASGI application, wrapped in its body-size limit and security headers."""
    app = FastAPI(
        title="bcpctl web",
        version="1",
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
    )
    app.state.web = ctx
    problems.install(app, pages.error_page)

    @app.exception_handler(pages.LoginRequired)
    async def _login(request: Request, exc: pages.LoginRequired) -> Response:
        return pages.redirect(exc.login)

    for module in (
        runbook,
        api_partner,
        api_operator,
        login,
        portal,
        portal_enrol,
        portal_evacuees,
        portal_practice,
        guide,
        dashboard,
    ):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(packages=[("bcpctl.web", "static")]), name="static")
    # FastAPI's documented way to extend the schema; mypy refuses assigning to a method.
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return SecurityHeaders(BodySizeLimit(app, ctx.web.max_body_bytes), hsts=ctx.web.secure_cookies)


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schema.setdefault("components", {})["securitySchemes"] = {
        "partnerSignature": {"type": "apiKey", "in": "header", "name": "X-BCP-Signature"},
        "partnerToken": {"type": "http", "scheme": "bearer"},
        "operatorPassword": {"type": "http", "scheme": "basic"},
        "session": {"type": "apiKey", "in": "cookie", "name": "__Host-bcp_session"},
    }
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if path.startswith("/api/partner"):
                signed_only = path == "/api/partner/requests" and method == "post"
                operation["security"] = (
                    [{"partnerSignature": []}]
                    if signed_only
                    else [{"partnerSignature": []}, {"partnerToken": []}, {"session": []}]
                )
            elif path.startswith("/api/operator"):
                operation["security"] = [{"operatorPassword": []}, {"session": []}]
    app.openapi_schema = schema
    return schema
