"""``/api/partner``: what a neighbouring municipality's systems call.

Submitting a request must be signed with the partner's registered Ed25519 key (see
:mod:`victim_support.partnersig`); reading status, downloading and confirming deletion also
accept a token an operator issued. A partner only ever sees its own requests, and only ever
receives the age-encrypted bundle: this API has no route that returns resident data.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse

from bcpctl.web import bundles, submission
from bcpctl.web.auth import Partner, context, require_partner
from bcpctl.web.models import Deletion, NotesReceived, NotesUpload, Rejection, RequestView, SubmitRequest
from bcpctl.web.views import partner_view
from victim_support import delivery
from victim_support.fields import FIELDS, NEVER_EXPORTED
from victim_support.notes import receive_notes
from victim_support.policy import BASES, PURPOSES
from victim_support.store import list_requests

router = APIRouter(prefix="/api/partner", tags=["partner"])

AnyPartner = Annotated[Partner, Depends(require_partner())]
SignedPartner = Annotated[Partner, Depends(require_partner(signed_only=True))]
_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"model": Rejection, "description": "Unsigned, badly signed, unknown partner or bad token."},
    404: {"model": Rejection, "description": "No such request for this partner."},
    413: {"model": Rejection, "description": "Body over the size limit."},
    422: {"model": Rejection, "description": "Invalid body, or a request the law tables do not allow."},
    429: {"model": Rejection, "description": "Rate limit reached."},
}


@router.get("/catalog", responses=_REFUSALS)
def catalog(request: Request, partner: AnyPartner) -> dict[str, Any]:
    """Legal bases with the fields and purposes each allows, never-exported items, and each tenant's 町字."""
    ctx = context(request)
    return {
        "bases": [
            {
                "code": code,
                "law": rule.law,
                "title": rule.title,
                "fields": sorted(rule.fields),
                "purposes": sorted(rule.purposes),
                "row_classes": sorted(rule.row_classes),
            }
            for code, rule in BASES.items()
        ],
        "purposes": [{"code": code, "label": label} for code, (label, _f) in PURPOSES.items()],
        "fields": [{"key": key, "label": label} for key, label in FIELDS.items()],
        "never_exported": [{"key": key, "reason": reason} for key, reason in NEVER_EXPORTED.items()],
        "tenants": [
            {
                "id": tenant_id,
                "name": tenant.name,
                "lg_code": tenant.lg_code,
                "machiaza": [{"id": m.id, "name": m.name} for m in submission.tenant_machiaza(ctx, tenant_id)],
            }
            for tenant_id, tenant in ctx.config.tenants.items()
        ],
    }


@router.post("/requests", status_code=201, response_model=RequestView, responses=_REFUSALS)
def submit_request(request: Request, body: SubmitRequest, partner: SignedPartner) -> RequestView:
    """File an export request signed with the partner's registered key.

    A request the law tables do not allow is refused (422) with every reason.
    """
    ctx = context(request)
    created = submission.submit(ctx, partner.id, body)
    return partner_view(created, None)


@router.post("/notes", response_model=NotesReceived, responses=_REFUSALS)
def return_notes(request: Request, body: NotesUpload, partner: SignedPartner) -> NotesReceived:
    """Return PFIF 1.4 notes about people this partner received (where they are), signed with its key.

    The request is signed like a submission, and the document carries its own SSH signature
    so the home town keeps proof of who said what; a bad one is refused (401), nothing stored.
    """
    ctx = context(request)
    result = receive_notes(
        ctx.state,
        ctx.config,
        ctx.exports,
        partner=partner.id,
        document=body.notes.encode("utf-8"),
        signature=body.signature,
        now=ctx.now(),
        via="api",
    )
    return NotesReceived(stored=result.stored, already_recorded=result.already_recorded, changed=result.changed)


@router.get("/requests", response_model=list[RequestView], responses=_REFUSALS)
def my_requests(request: Request, partner: AnyPartner) -> list[RequestView]:
    """This partner's requests with their effective status (pending, approved, denied, expired)."""
    ctx = context(request)
    found = [r for r in list_requests(ctx.state, ctx.exports, ctx.now()) if r.partner == partner.id]
    return [partner_view(r, delivery.find_delivery(ctx.state, r.id)) for r in found]


@router.get("/requests/{request_id}", response_model=RequestView, responses=_REFUSALS)
def request_status(request: Request, request_id: str, partner: AnyPartner) -> RequestView:
    ctx = context(request)
    found = delivery.own_request(ctx.state, ctx.exports, request_id, partner.id, ctx.now())
    return partner_view(found, delivery.find_delivery(ctx.state, request_id))


@router.get(
    "/requests/{request_id}/bundle",
    response_class=FileResponse,
    responses={
        **_REFUSALS,
        200: {"content": {"application/x-tar": {}}, "description": "envelope, signature and age payload"},
        409: {"model": Rejection, "description": "Not approved (yet)."},
        410: {"model": Rejection, "description": "Expired or deleted."},
    },
)
def download_bundle(request: Request, request_id: str, partner: AnyPartner) -> FileResponse:
    """The signed, age-encrypted bundle of an approved request (built from the offsite replica on first download)."""
    ctx = context(request)
    return bundles.bundle_response(ctx, request_id, partner.id, partner.via)


@router.post(
    "/requests/{request_id}/deletion",
    response_model=RequestView,
    responses={**_REFUSALS, 409: {"model": Rejection, "description": "Never downloaded, or already confirmed."}},
)
def confirm_deletion(request: Request, request_id: str, body: Deletion, partner: AnyPartner) -> RequestView:
    """Confirm that every copy of the bundle was deleted (at the end of the retention period)."""
    ctx = context(request)
    bundles.confirm_deletion(ctx, request_id, partner.id, body, partner.via)
    found = delivery.own_request(ctx.state, ctx.exports, request_id, partner.id, ctx.now())
    return partner_view(found, delivery.find_delivery(ctx.state, request_id))
