"""Who is asking: operators (password, session or trusted proxy header) and partners (signature, token, session).

Operators: HTTP Basic with an account's password (scripts), the session cookie of a login
(pages), or — when ``web.proxy_auth`` is set and the TCP peer is a trusted proxy — the
proxy's header naming an existing account. Roles always come from the account.

Partners: a request signed with the partner's registered Ed25519 key, a bearer token an
operator issued, or the session cookie of a token login. Every partner request spends a
rate-limit token; failed logins spend one per client address.

Cookie-authenticated requests that change state must carry the session's CSRF token (header
``X-CSRF-Token`` for the API, the form field ``csrf`` for pages) and, when the browser sends
an ``Origin``, come from this site's own origin.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlparse

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from bcpctl.web.context import WebContext
from bcpctl.web.errors import Forbidden, TooManyRequests
from dc import accounts, sessions
from dc.errors import N_, AuthError
from victim_support import partnersig, tokens

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def cookie_name(ctx: WebContext) -> str:
    # __Host- cookies must be Secure, host-only and Path=/ (RFC 6265bis §4.1.3.2).
    return "__Host-bcp_session" if ctx.web.secure_cookies else "bcp_session"


@dataclass(frozen=True)
class Operator:
    name: str
    roles: tuple[str, ...]
    via: str
    session: sessions.Session | None = None


@dataclass(frozen=True)
class Partner:
    id: str
    via: str
    session: sessions.Session | None = None


def context(request: Request) -> WebContext:
    web: WebContext = request.app.state.web
    return web


def peer(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _limit_failures(ctx: WebContext, request: Request) -> None:
    wait = ctx.login_limiter.take(f"fail:{peer(request)}")
    if wait:
        raise TooManyRequests(N_("too many failed attempts from this address; wait and try again"), wait)


def _basic(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        name, sep, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise AuthError(N_("malformed Basic credentials")) from None
    if not sep or not name:
        raise AuthError(N_("malformed Basic credentials"))
    return name, password


def session_of(ctx: WebContext, request: Request, kind: str) -> sessions.Session | None:
    cookie = request.cookies.get(cookie_name(ctx), "")
    found = sessions.load_session(ctx.state, cookie, ctx.now()) if cookie else None
    return found if found is not None and found.kind == kind else None


def _operator(ctx: WebContext, request: Request) -> Operator | None:
    proxy = ctx.web.proxy_auth
    if proxy is not None and proxy.trusts(peer(request)) and (name := request.headers.get(proxy.header)):
        account = accounts.find_account(ctx.state, name)
        if account is None or account.disabled:
            raise AuthError(N_("the proxy's user has no enabled account here"))
        return Operator(account.name, account.roles, "proxy")
    header = request.headers.get("authorization", "")
    if header:
        credentials = _basic(header)
        if credentials is None:
            raise AuthError(N_("operators authenticate with Basic credentials or a login session"))
        account = accounts.authenticate(ctx.state, *credentials)
        if account is None:
            _limit_failures(ctx, request)
            raise AuthError(N_("unknown account or wrong password"))
        return Operator(account.name, account.roles, "password")
    session = session_of(ctx, request, sessions.OPERATOR)
    if session is None:
        return None
    account = accounts.find_account(ctx.state, session.subject)
    if account is None or account.disabled:
        return None
    return Operator(account.name, account.roles, "session", session)


def check_csrf(request: Request, session: sessions.Session | None, supplied: str | None) -> None:
    """Refuse a state change from a session without its CSRF token or from another origin."""
    if session is None or request.method in SAFE_METHODS:
        return
    origin = request.headers.get("origin")
    if origin is not None and urlparse(origin).netloc != request.headers.get("host", ""):
        raise Forbidden(N_("cross-origin request refused"))
    if not supplied or not hmac.compare_digest(supplied, session.csrf):
        raise Forbidden(N_("missing or wrong CSRF token; reload the page and try again"))


def require_operator(*roles: str, csrf: str = "header") -> Callable[[Request], Awaitable[Operator]]:
    """A dependency: the operator, if they hold one of ``roles`` (any role when none given)."""

    async def dependency(request: Request) -> Operator:
        ctx = context(request)
        operator = await run_in_threadpool(_operator, ctx, request)
        if operator is None:
            raise AuthError(N_("log in as an operator (Basic credentials or a login session)"))
        if roles and not set(roles) & set(operator.roles):
            raise Forbidden(
                N_("this needs the role {roles}; '{name}' has {roles2}"),
                roles=" or ".join(roles),
                name=operator.name,
                roles2=", ".join(operator.roles),
            )
        if csrf == "header":
            check_csrf(request, operator.session, request.headers.get("x-csrf-token"))
        return operator

    return dependency


def _partner(ctx: WebContext, request: Request, body: bytes, signed_only: bool) -> Partner | None:
    ctx.refresh_partners()
    headers = {k.lower(): v for k, v in request.headers.items()}
    if partnersig.has_signature(headers):
        # The request target exactly as sent (percent-encoded), which is what the partner signed.
        raw = request.scope.get("raw_path") or request.url.path.encode()
        query = request.scope.get("query_string") or b""
        target = raw.decode("latin-1") + (f"?{query.decode('latin-1')}" if query else "")
        try:
            signed = partnersig.verify_signed(
                ctx.state,
                ctx.config,
                method=request.method,
                target=target,
                headers=headers,
                body=body,
                now=ctx.now(),
                window=ctx.web.signature_window,
            )
        except AuthError:
            _limit_failures(ctx, request)
            raise
        return Partner(signed.partner, "signature")
    if signed_only:
        raise AuthError(N_("this request must be signed with the partner's registered key (X-BCP-* headers)"))
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, secret = header.partition(" ")
        partner = tokens.partner_for_token(ctx.state, ctx.config, secret.strip(), ctx.now())
        if scheme.lower() != "bearer" or partner is None:
            _limit_failures(ctx, request)
            raise AuthError(N_("unknown, expired or revoked partner token"))
        return Partner(partner, "token")
    session = session_of(ctx, request, sessions.PARTNER)
    if session is None or session.subject not in ctx.config.partners:
        return None
    return Partner(session.subject, "session", session)


def require_partner(*, signed_only: bool = False, csrf: str = "header") -> Callable[[Request], Awaitable[Partner]]:
    """A dependency: the authenticated partner, rate-limited per partner."""

    async def dependency(request: Request) -> Partner:
        ctx = context(request)
        body = await request.body()
        partner = await run_in_threadpool(_partner, ctx, request, body, signed_only)
        if partner is None:
            raise AuthError(N_("partners authenticate with a signed request, a token, or a token login"))
        wait = ctx.partner_limiter.take(partner.id)
        if wait:
            raise TooManyRequests(
                N_("rate limit of {partner_requests_per_minute} requests a minute reached"),
                wait,
                partner_requests_per_minute=ctx.web.partner_requests_per_minute,
            )
        if csrf == "header":
            check_csrf(request, partner.session, request.headers.get("x-csrf-token"))
        return partner

    return dependency
