"""``/api/operator``: the data center's side — requests and decisions, status, drills, audit, tokens.

Roles (:mod:`dc.accounts`): any operator account may read requests and status;
deciding needs ``approver`` (and the account must be a configured approver of the tenant:
the two-person rule counts distinct such people); drills and partner tokens need
``operator``; the audit log needs ``auditor``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from bcpctl import i18n
from bcpctl.output import to_jsonable
from bcpctl.web.auth import Operator, context, require_operator
from bcpctl.web.context import WebContext
from bcpctl.web.errors import Conflict, Forbidden, NotFound
from bcpctl.web.messages import PAGE_LANGUAGE
from bcpctl.web.models import (
    Approve,
    Deny,
    DrillStart,
    IssuedTokenView,
    JobView,
    OperatorRequestView,
    Rejection,
    TokenIssue,
    TokenView,
    Whoami,
)
from bcpctl.web.status import consortium_status
from bcpctl.web.views import operator_view
from dc.accounts import APPROVER, AUDITOR, OPERATOR
from dc.approvers import ApproverAuthFailed
from dc.errors import N_, UsageError
from victim_support import audit, delivery, tokens
from victim_support.approval import approver_role
from victim_support.decisions import decide
from victim_support.errors import PolicyRejected
from victim_support.store import get_request, list_requests

router = APIRouter(prefix="/api/operator", tags=["operator"])

Anyone = Annotated[Operator, Depends(require_operator())]
Approver = Annotated[Operator, Depends(require_operator(APPROVER))]
Runner = Annotated[Operator, Depends(require_operator(OPERATOR))]
Auditor = Annotated[Operator, Depends(require_operator(AUDITOR))]
_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"model": Rejection, "description": "Not logged in, or wrong password."},
    403: {"model": Rejection, "description": "The account lacks the role, or a CSRF check failed."},
    404: {"model": Rejection, "description": "No such resource."},
    413: {"model": Rejection, "description": "Body over the size limit."},
    422: {"model": Rejection, "description": "Invalid request."},
}
_DECIDING = {
    **_REFUSALS,
    403: {
        "model": Rejection,
        "description": "Wrong role, not an approver of the tenant, or a wrong or missing secret.",
    },
    409: {"model": Rejection, "description": "Not pending, or this person (or this secret) already decided."},
}


@router.get("/whoami", response_model=Whoami, responses=_REFUSALS)
def whoami(operator: Anyone) -> Whoami:
    return Whoami(name=operator.name, roles=list(operator.roles), via=operator.via)


def _request(ctx: WebContext, request_id: str) -> OperatorRequestView:
    try:
        found = get_request(ctx.state, request_id, ctx.exports, ctx.now())
    except UsageError:
        raise NotFound(N_("no export request '{request_id}'"), request_id=request_id) from None
    return operator_view(found, delivery.find_delivery(ctx.state, request_id))


@router.get("/requests", response_model=list[OperatorRequestView], responses=_REFUSALS)
def requests(
    request: Request,
    operator: Anyone,
    status: Literal["pending", "approved", "denied", "expired"] | None = None,
    tenant: Annotated[str | None, Query(max_length=64)] = None,
) -> list[OperatorRequestView]:
    ctx = context(request)
    found = list_requests(ctx.state, ctx.exports, ctx.now(), tenant=tenant, status=status)
    return [operator_view(r, delivery.find_delivery(ctx.state, r.id)) for r in found]


@router.get("/requests/{request_id}", response_model=OperatorRequestView, responses=_REFUSALS)
def request_detail(request: Request, request_id: str, operator: Anyone) -> OperatorRequestView:
    return _request(context(request), request_id)


def decide_as(
    ctx: WebContext, operator: Operator, request_id: str, *, approve: bool, reason: str, secret: str | None
) -> None:
    """One decision by the logged-in approver, proven with their own secret as on the command line.

    The login says who is at the keyboard; it is not the approval's credential, because web
    accounts live in the control database that an approval must be safe against. So the
    rule is the CLI's: the approver's name (here: the login) and that approver's secret.
    """
    current = _request(ctx, request_id)
    if approver_role(ctx.exports, current.tenant, operator.name) is None:
        raise Forbidden(
            N_("'{name}' is not a configured approver for {tenant}"), name=operator.name, tenant=current.tenant
        )
    try:
        decide(
            ctx.state,
            ctx.config,
            ctx.exports,
            request_id,
            approver=operator.name,
            secret=secret,
            approve=approve,
            reason=reason,
            now=ctx.now(),
            via=f"web:{operator.via}",
        )
    except PolicyRejected as exc:
        raise Conflict(exc.template, **exc.params) from None
    except ApproverAuthFailed as exc:
        raise Forbidden(exc.template, **exc.params) from None


def _secret(body: Approve | Deny) -> str | None:
    return body.approver_secret.get_secret_value() if body.approver_secret else None


@router.post("/requests/{request_id}/approve", response_model=OperatorRequestView, responses=_DECIDING)
def approve(request: Request, request_id: str, body: Approve, operator: Approver) -> OperatorRequestView:
    """Approve with the approver's own secret; approved when the basis's number of distinct approvers is reached.

    A wrong or missing secret is refused (403) and nothing is recorded.
    """
    ctx = context(request)
    decide_as(ctx, operator, request_id, approve=True, reason=body.reason, secret=_secret(body))
    return _request(ctx, request_id)


@router.post("/requests/{request_id}/deny", response_model=OperatorRequestView, responses=_DECIDING)
def deny(request: Request, request_id: str, body: Deny, operator: Approver) -> OperatorRequestView:
    """Deny (final); the reason is shown to the partner and audited."""
    ctx = context(request)
    decide_as(ctx, operator, request_id, approve=False, reason=body.reason, secret=_secret(body))
    return _request(ctx, request_id)


@router.get("/status", responses=_REFUSALS)
def status(request: Request, operator: Anyone) -> dict[str, Any]:
    """Per tenant and system: the "recoverable now" light and its reasons, last backup, replication lag, drills."""
    ctx = context(request)
    return to_jsonable(consortium_status(ctx.config, ctx.state, fresh=ctx.drill_fresh, now=ctx.now()))


@router.get("/drills", responses=_REFUSALS)
def drills(request: Request, operator: Anyone) -> dict[str, Any]:
    """Recent drill, failover and failback runs, and drills started from here."""
    ctx = context(request)
    found = consortium_status(ctx.config, ctx.state, fresh=ctx.drill_fresh, now=ctx.now())
    return {"runs": to_jsonable(found.drills), "jobs": to_jsonable(ctx.jobs.list())}


@router.post("/drills", status_code=202, response_model=JobView, responses={**_REFUSALS, 409: {"model": Rejection}})
def start_drill(request: Request, body: DrillStart, operator: Runner) -> JobView:
    """Start a drill in the background (failover's run_drill); poll the job, then read the run's report."""
    ctx = context(request)
    job = ctx.jobs.start(mode=body.mode, tenant=body.tenant, requested_by=operator.name, now=ctx.now())
    return JobView(**vars(job))


@router.get("/drills/jobs/{job_id}", response_model=JobView, responses=_REFUSALS)
def drill_job(request: Request, job_id: str, operator: Anyone) -> JobView:
    return JobView(**vars(context(request).jobs.get(job_id)))


@router.get(
    "/drills/{run_id}/report",
    response_class=Response,
    responses={**_REFUSALS, 200: {"content": {"text/html": {}, "application/json": {}, "text/plain": {}}}},
)
def drill_report(
    request: Request, run_id: str, operator: Anyone, format: Literal["html", "json", "ja"] = "html"
) -> Response:
    """A stored run's report: HTML with the timeline and trend, JSON, or the Japanese 訓練実施報告."""
    return report_response(context(request), run_id, format)


def _on_page(line: str) -> str:
    """A stored run's line for people in the page's language (the report puts the English beside it)."""
    return i18n.shown(line, PAGE_LANGUAGE)


def report_response(ctx: WebContext, run_id: str, format: str) -> Response:
    from failover.reports import render_report, site_names

    if len(run_id) > 64:
        raise NotFound(N_("no run '{run_id}…'"), run_id=run_id[:64])
    names = {k: t.name for k, t in ctx.config.tenants.items()}
    try:
        text = render_report(ctx.state, run_id, format, names, None, site_names(ctx.config), _on_page)
    except UsageError as exc:
        raise NotFound(exc.template, **exc.params) from None
    if format == "html":
        # failover's report carries its own inline style and no script.
        return HTMLResponse(text, headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"})
    if format == "json":
        return JSONResponse(content=json.loads(text))
    return PlainTextResponse(text)


@router.get("/audit", responses=_REFUSALS)
def audit_log(
    request: Request,
    operator: Auditor,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    """The hash-chained audit log from entry ``after + 1``, and whether the whole chain verifies."""
    ctx = context(request)
    entries = audit.read_entries(ctx.state)
    report = audit.verify_entries(entries)
    return {"chain": to_jsonable(report), "entries": to_jsonable([e for e in entries if e.seq > after][:limit])}


@router.post("/partners/{partner}/tokens", status_code=201, response_model=IssuedTokenView, responses=_REFUSALS)
def issue_token(request: Request, partner: str, body: TokenIssue, operator: Runner) -> IssuedTokenView:
    """Issue a partner token (shown once) for the portal or scripts that cannot sign."""
    ctx = context(request)
    if partner not in ctx.config.partners:
        raise NotFound(N_("unknown partner '{partner}'"), partner=partner[:64])
    issued = tokens.issue_token(
        ctx.state,
        ctx.config,
        partner,
        label=body.label,
        issued_by=operator.name,
        lifetime=ctx.web.token_lifetime,
        now=ctx.now(),
    )
    info = issued.info
    return IssuedTokenView(
        id=info.id, partner=info.partner, label=info.label, expires_at=info.expires_at, token=issued.secret
    )


@router.get("/partners/tokens", response_model=list[TokenView], responses=_REFUSALS)
def list_tokens(request: Request, operator: Runner) -> list[TokenView]:
    return [TokenView(**vars(t)) for t in tokens.list_tokens(context(request).state)]


@router.delete("/partners/tokens/{token_id}", response_model=TokenView, responses=_REFUSALS)
def revoke_token(request: Request, token_id: str, operator: Runner) -> TokenView:
    ctx = context(request)
    if not any(t.id == token_id for t in tokens.list_tokens(ctx.state)):
        raise NotFound(N_("no token '{token_id}'"), token_id=token_id[:64])
    tokens.revoke_token(ctx.state, token_id, actor=operator.name, now=ctx.now())
    return next(TokenView(**vars(t)) for t in tokens.list_tokens(ctx.state) if t.id == token_id)
