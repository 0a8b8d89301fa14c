"""The operator dashboard: is every system of every tenant recoverable right now?

One screen per consortium: a traffic light per tenant and system with the three reasons
behind it (:mod:`bcpctl.web.recoverability`), replication lag per site, pending export
requests with approve/deny for approvers, drills (start one, read the latest report), and
partner tokens for operators. Auditors get the audit log.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from bcpctl.output import to_jsonable
from bcpctl.web import auth, pages
from bcpctl.web.api_operator import decide_as, report_response
from bcpctl.web.status import consortium_status
from bcpctl.web.views import operator_view
from dc.accounts import APPROVER, AUDITOR, OPERATOR
from victim_support import audit, delivery, tokens
from victim_support.approval import approver_role
from victim_support.lookup import read_notices
from victim_support.store import list_requests

router = APIRouter(include_in_schema=False)


@router.get("/dashboard")
async def dashboard(request: Request) -> Response:
    operator = await pages.operator(request)
    ctx = auth.context(request)

    def load() -> dict[str, Any]:
        status = consortium_status(ctx.config, ctx.state, fresh=ctx.drill_fresh, now=ctx.now())
        pending = [
            operator_view(r, delivery.find_delivery(ctx.state, r.id))
            for r in list_requests(ctx.state, ctx.exports, ctx.now(), status="pending")
        ]
        # the home town's queue: its approvers see lookups that named one of its protected residents
        mine = {t for t in ctx.config.tenants if approver_role(ctx.exports, t, operator.name) is not None}
        notices = [n for n in read_notices(ctx.state) if n["tenant"] in mine]
        return {"status": status, "pending": pending, "jobs": ctx.jobs.list(5), "notices": notices}

    data = await run_in_threadpool(load)
    return pages.render(
        request,
        "dashboard.html",
        operator=operator,
        csrf=operator.session.csrf if operator.session else "",
        partners=ctx.config.partners,
        tenants=ctx.config.tenants,
        can_approve=APPROVER in operator.roles,
        can_operate=OPERATOR in operator.roles,
        can_audit=AUDITOR in operator.roles,
        **data,
    )


async def _decide(request: Request, request_id: str, approve: bool) -> Response:
    operator = await pages.operator(request, APPROVER)
    form = await pages.form_of(request, operator.session)
    reason = str(form.get("reason", ""))[:1000]
    secret = str(form.get("approver_secret", ""))[:1024] or None
    ctx = auth.context(request)
    if not approve and not reason.strip():
        return pages.error_page(request, 422, "却下には理由が必要です / a denial needs a reason")
    await run_in_threadpool(lambda: decide_as(ctx, operator, request_id, approve=approve, reason=reason, secret=secret))
    return pages.redirect(f"/dashboard?done={'approved' if approve else 'denied'}#requests")


@router.post("/dashboard/requests/{request_id}/approve")
async def approve(request: Request, request_id: str) -> Response:
    return await _decide(request, request_id, True)


@router.post("/dashboard/requests/{request_id}/deny")
async def deny(request: Request, request_id: str) -> Response:
    return await _decide(request, request_id, False)


@router.post("/dashboard/drills")
async def start_drill(request: Request) -> Response:
    operator = await pages.operator(request, OPERATOR)
    form = await pages.form_of(request, operator.session)
    ctx = auth.context(request)
    mode = str(form.get("mode", "isolated"))
    tenant = str(form.get("tenant", "")) or None
    await run_in_threadpool(lambda: ctx.jobs.start(mode=mode, tenant=tenant, requested_by=operator.name, now=ctx.now()))
    return pages.redirect("/dashboard?done=drill#drills")


@router.get("/dashboard/drills/{run_id}")
async def drill_report(request: Request, run_id: str) -> Response:
    await pages.operator(request)
    ctx = auth.context(request)
    return await run_in_threadpool(report_response, ctx, run_id, "html")


@router.post("/dashboard/tokens")
async def issue_token(request: Request) -> Response:
    operator = await pages.operator(request, OPERATOR)
    form = await pages.form_of(request, operator.session)
    ctx = auth.context(request)
    partner = str(form.get("partner", ""))
    label = str(form.get("label", ""))[:200]
    issued = await run_in_threadpool(
        lambda: tokens.issue_token(
            ctx.state,
            ctx.config,
            partner,
            label=label,
            issued_by=operator.name,
            lifetime=ctx.web.token_lifetime,
            now=ctx.now(),
        )
    )
    return pages.render(
        request,
        "token.html",
        operator=operator,
        csrf=operator.session.csrf if operator.session else "",
        issued=issued,
        partner_name=ctx.config.partners[partner].name,
    )


@router.get("/dashboard/audit")
async def audit_page(request: Request) -> Response:
    operator = await pages.operator(request, AUDITOR)
    ctx = auth.context(request)

    def load() -> dict[str, Any]:
        entries = audit.read_entries(ctx.state)
        return {"chain": audit.verify_entries(entries), "entries": to_jsonable(list(reversed(entries))[:300])}

    data = await run_in_threadpool(load)
    return pages.render(
        request, "audit.html", operator=operator, csrf=operator.session.csrf if operator.session else "", **data
    )
