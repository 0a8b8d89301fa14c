"""What the page routes share: templates, the logged-in person, CSRF, cookies, redirects.

Pages are server-rendered (Jinja2, autoescaped) and work without JavaScript, so they open on
any tablet a shelter has. Japanese comes first on every label, English after it.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from bcpctl.web import auth, messages
from bcpctl.web.context import WebContext
from bcpctl.web.errors import Forbidden
from bcpctl.web.labels import FILTERS
from dc import sessions
from dc.clock import jst_text
from dc.errors import N_, AuthError, BcpError, Message
from victim_support import audit

templates = Jinja2Templates(
    env=Environment(loader=PackageLoader("bcpctl.web", "templates"), autoescape=select_autoescape())
)


#: every time on a page: ``YYYY-MM-DD HH:MM JST``
templates.env.filters["jst"] = jst_text
#: every code on a page in Japanese beside it (status, purpose, field, legal basis, role)
templates.env.filters.update(FILTERS)
#: a stored line for people (a run's error): Japanese, then the English when it differs
templates.env.filters["line"] = messages.on_page

#: Fixed notices a redirect may name (never free text from the URL).
NOTICES = {
    "approved": "承認を記録しました / Approval recorded",
    "denied": "却下を記録しました / Denial recorded",
    "drill": "訓練を開始しました / Drill started",
    "submitted": "申請を受け付けました / Request submitted",
    "deleted": "削除の確認を記録しました / Deletion confirmed",
    "loggedout": "ログアウトしました / Logged out",
}


class LoginRequired(Exception):
    """A page needs a login: the handler redirects to the right login form."""

    def __init__(self, login: str) -> None:
        self.login = login


def render(request: Request, name: str, http_status: int = 200, **values: Any) -> HTMLResponse:
    notice = NOTICES.get(request.query_params.get("done", ""))
    response = templates.TemplateResponse(request, name, {"notice": notice, **values}, status_code=http_status)
    response.headers["Cache-Control"] = "no-store"
    return response


def error_page(request: Request, status: int, detail: BcpError | Message | str) -> Response:
    """The error as a page: Japanese first, the English line beside it (server paths hidden)."""
    japanese, english = messages.in_language(detail, messages.PAGE_LANGUAGE)
    return render(
        request,
        "error.html",
        http_status=status,
        status_code=status,
        detail=japanese,
        detail_en=english if english != japanese else "",
    )


async def operator(request: Request, *roles: str) -> auth.Operator:
    ctx = auth.context(request)
    try:
        found = await run_in_threadpool(auth._operator, ctx, request)
    except AuthError:
        found = None
    if found is None:
        raise LoginRequired("/login")
    if roles and not set(roles) & set(found.roles):
        raise Forbidden(
            N_("この操作には {roles} の権限が必要です / needs the role {roles2}"),
            roles=" / ".join(roles),
            roles2=" or ".join(roles),
        )
    return found


async def partner(request: Request) -> auth.Partner:
    ctx = auth.context(request)
    await run_in_threadpool(ctx.refresh_partners)
    session = await run_in_threadpool(auth.session_of, ctx, request, sessions.PARTNER)
    if session is None or session.subject not in ctx.config.partners:
        raise LoginRequired("/portal/login")
    wait = ctx.partner_limiter.take(session.subject)
    if wait:
        from bcpctl.web.errors import TooManyRequests

        raise TooManyRequests(N_("しばらく待ってから再度お試しください / rate limit reached"), wait)
    return auth.Partner(session.subject, "session", session)


async def form_of(request: Request, session: sessions.Session | None) -> Any:
    """The posted form, after its CSRF token was checked against the session."""
    form = await request.form()
    csrf = form.get("csrf")
    auth.check_csrf(request, session, csrf if isinstance(csrf, str) else None)
    return form


def redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def start_session(ctx: WebContext, request: Request, kind: str, subject: str, target: str) -> RedirectResponse:
    cookie, _session = sessions.create_session(
        ctx.state, kind, subject, lifetime=ctx.web.session_lifetime, now=ctx.now()
    )
    audit.audited(
        ctx.state,
        lambda conn: audit.append(
            conn, actor=subject, action="session.login", subject=kind, details={"address": auth.peer(request)}
        ),
    )
    response = redirect(target)
    response.set_cookie(
        auth.cookie_name(ctx),
        cookie,
        max_age=ctx.web.session_lifetime,
        httponly=True,
        secure=ctx.web.secure_cookies,
        samesite="strict",
        path="/",
    )
    return response


def end_session(ctx: WebContext, request: Request, target: str) -> RedirectResponse:
    cookie = request.cookies.get(auth.cookie_name(ctx), "")
    if cookie:
        sessions.end_session(ctx.state, cookie)
    response = redirect(target)
    response.delete_cookie(auth.cookie_name(ctx), path="/", secure=ctx.web.secure_cookies, httponly=True)
    return response
