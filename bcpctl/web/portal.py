"""The partner portal: file a request, follow it, download the bundle, confirm its deletion.

The form is built from the law tables (:mod:`bcpctl.web.requestform`): pick the tenant and
the legal basis, then only that basis's purposes and fields can be ticked, and every field
it does not allow is shown greyed out with the reason.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from bcpctl.web import auth, bundles, messages, pages, submission
from bcpctl.web.models import Deletion, SubmitRequest
from bcpctl.web.requestform import form_of_basis
from bcpctl.web.views import partner_view
from victim_support import delivery
from victim_support.errors import PolicyRejected
from victim_support.policy import BASES
from victim_support.store import list_requests

router = APIRouter(include_in_schema=False)


def _form_page(request: Request, partner: auth.Partner, status: int = 200, **values: Any) -> Response:
    ctx = auth.context(request)
    tenant = values.pop("tenant", None) or request.query_params.get("tenant") or ""
    basis = values.pop("basis", None) or request.query_params.get("basis") or ""
    tenant = tenant if tenant in ctx.config.tenants else ""
    basis = basis if basis in BASES else ""
    mine = [r for r in list_requests(ctx.state, ctx.exports, ctx.now()) if r.partner == partner.id]
    return pages.render(
        request,
        "portal.html",
        http_status=status,
        partner=partner,
        partner_name=ctx.config.partners[partner.id].name,
        requests=list(reversed(mine)),
        tenants=ctx.config.tenants,
        bases=BASES,
        tenant=tenant,
        basis=basis,
        options=form_of_basis(basis) if basis else None,
        machiaza=submission.tenant_machiaza(ctx, tenant) if tenant else (),
        csrf=partner.session.csrf if partner.session else "",
        posted=values.pop("posted", {}),
        **values,
    )


@router.get("/portal")
async def portal(request: Request) -> Response:
    partner = await pages.partner(request)
    return await run_in_threadpool(_form_page, request, partner)


@router.post("/portal/requests")
async def portal_submit(request: Request) -> Response:
    partner = await pages.partner(request)
    form = await pages.form_of(request, partner.session)
    ctx = auth.context(request)
    posted = {
        "tenant": str(form.get("tenant", "")),
        "basis": str(form.get("basis", "")),
        "disaster_id": str(form.get("disaster_id", "")),
        "disaster_date": str(form.get("disaster_date", "")),
        "purposes": [str(v) for v in form.getlist("purposes")],
        "fields": [str(v) for v in form.getlist("fields")],
        "areas": [str(v) for v in form.getlist("areas")],
        "all_areas": form.get("all_areas") == "1",
        "support_only": form.get("support_only") == "1",
        "retention_days": str(form.get("retention_days", "")).strip() or None,
        "formats": [str(v) for v in form.getlist("formats")],
        "requested_by": str(form.get("requested_by", "")),
    }
    try:
        body = SubmitRequest.model_validate(posted)
        created = await run_in_threadpool(lambda: submission.submit(ctx, partner.id, body))
    except ValidationError as exc:
        errors = [messages.on_page(messages.field_problem(e)) for e in exc.errors()]
        return await run_in_threadpool(
            lambda: _form_page(
                request, partner, 422, tenant=posted["tenant"], basis=posted["basis"], errors=errors, posted=posted
            )
        )
    except PolicyRejected as exc:
        reasons = [messages.on_page(r) for r in exc.reasons or (exc,)]
        return await run_in_threadpool(
            lambda: _form_page(
                request, partner, 422, tenant=posted["tenant"], basis=posted["basis"], errors=reasons, posted=posted
            )
        )
    return pages.redirect(f"/portal/requests/{created.id}?done=submitted")


@router.get("/portal/requests/{request_id}")
async def portal_request(request: Request, request_id: str) -> Response:
    partner = await pages.partner(request)
    ctx = auth.context(request)

    def load() -> Any:
        found = delivery.own_request(ctx.state, ctx.exports, request_id, partner.id, ctx.now())
        return partner_view(found, delivery.find_delivery(ctx.state, request_id))

    view = await run_in_threadpool(load)
    return pages.render(
        request,
        "portal_request.html",
        partner=partner,
        partner_name=ctx.config.partners[partner.id].name,
        tenant_name=ctx.config.tenants[view.tenant].name if view.tenant in ctx.config.tenants else view.tenant,
        r=view,
        csrf=partner.session.csrf if partner.session else "",
        now=ctx.now(),
    )


@router.get("/portal/requests/{request_id}/bundle")
async def portal_bundle(request: Request, request_id: str) -> Response:
    partner = await pages.partner(request)
    ctx = auth.context(request)
    return await run_in_threadpool(lambda: bundles.bundle_response(ctx, request_id, partner.id, "portal"))


@router.post("/portal/requests/{request_id}/deletion")
async def portal_deletion(request: Request, request_id: str) -> Response:
    partner = await pages.partner(request)
    form = await pages.form_of(request, partner.session)
    ctx = auth.context(request)
    try:
        body = Deletion.model_validate(
            {"deleted_by": str(form.get("deleted_by", "")), "note": str(form.get("note", ""))}
        )
    except ValidationError:
        return pages.error_page(request, 422, "削除した担当者名を入力してください / name who deleted the copies")
    await run_in_threadpool(lambda: bundles.confirm_deletion(ctx, request_id, partner.id, body, "portal"))
    return pages.redirect(f"/portal/requests/{request_id}?done=deleted")
