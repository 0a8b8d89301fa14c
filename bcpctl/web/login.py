"""Logging in and out: operators with account and password, partners with an issued token."""

from __future__ import annotations

from urllib.parse import urlparse

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from bcpctl.web import auth, pages
from bcpctl.web.errors import Forbidden, TooManyRequests
from dc import accounts, sessions
from dc.errors import N_
from victim_support import tokens

router = APIRouter(include_in_schema=False)


def _throttle(request: Request) -> None:
    ctx = auth.context(request)
    wait = ctx.login_limiter.take(f"fail:{auth.peer(request)}")
    if wait:
        raise TooManyRequests(N_("ログイン失敗が多すぎます / too many failed logins; wait and try again"), wait)


@router.get("/")
def home(request: Request) -> Response:
    return pages.render(request, "home.html")


@router.get("/login")
def login_form(request: Request) -> Response:
    return pages.render(request, "login.html")


@router.post("/login")
async def login(request: Request) -> Response:
    ctx = auth.context(request)
    form = await pages.form_of(request, None)
    if _cross_origin(request):
        raise Forbidden(N_("cross-origin login refused"))
    name, password = str(form.get("name", ""))[:64], str(form.get("password", ""))[:1024]
    account = await run_in_threadpool(accounts.authenticate, ctx.state, name, password)
    if account is None:
        _throttle(request)
        return pages.render(
            request,
            "login.html",
            http_status=401,
            error="アカウント名またはパスワードが違います / wrong name or password",
        )
    return pages.start_session(ctx, request, sessions.OPERATOR, account.name, "/dashboard")


@router.get("/portal/login")
def portal_login_form(request: Request) -> Response:
    return pages.render(request, "portal_login.html")


@router.post("/portal/login")
async def portal_login(request: Request) -> Response:
    ctx = auth.context(request)
    form = await pages.form_of(request, None)
    if _cross_origin(request):
        raise Forbidden(N_("cross-origin login refused"))
    secret = str(form.get("token", "")).strip()[:200]
    partner = await run_in_threadpool(tokens.partner_for_token, ctx.state, ctx.config, secret, ctx.now())
    if partner is None:
        _throttle(request)
        return pages.render(
            request,
            "portal_login.html",
            http_status=401,
            error="トークンが無効です / unknown, expired or revoked token",
        )
    return pages.start_session(ctx, request, sessions.PARTNER, partner, "/portal")


def _cross_origin(request: Request) -> bool:
    """Login CSRF (a victim logged into the attacker's account): refuse posts from another origin."""
    origin = request.headers.get("origin")
    return origin is not None and urlparse(origin).netloc != request.headers.get("host", "")


@router.post("/logout")
async def logout(request: Request) -> Response:
    ctx = auth.context(request)
    cookie = request.cookies.get(auth.cookie_name(ctx), "")
    session = sessions.load_session(ctx.state, cookie, ctx.now()) if cookie else None
    await pages.form_of(request, session)
    target = "/portal/login" if session is not None and session.kind == sessions.PARTNER else "/login"
    return pages.end_session(ctx, request, f"{target}?done=loggedout")
