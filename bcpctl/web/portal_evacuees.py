"""The partner portal's evacuee page: find one evacuee, and upload the shelter's signed PFIF notes.

The same cores, rules and limits as ``bcpctl export lookup`` and ``bcpctl export return``; the
partner is the logged-in one, never a form field, and the official's name is what the
per-hour limit counts. An uploaded notes document needs its SSH signature by the partner's
registered key as well: a portal session proves who is logged in, not who wrote the notes.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from bcpctl.web import auth, messages, pages
from dc.errors import BcpError, UsageError
from victim_support.lookup import lookup_evacuee
from victim_support.lookuprules import LookupQuery
from victim_support.notes import receive_notes
from victim_support.pfifnote import MAX_NOTES_BYTES

router = APIRouter(include_in_schema=False)
#: every text field of the form is one name or one 町字: nothing longer is a lookup
_MAX = 100


def _page(request: Request, partner: auth.Partner, status: int = 200, **values: Any) -> Response:
    ctx = auth.context(request)
    return pages.render(
        request,
        "portal_lookup.html",
        http_status=status,
        partner=partner,
        partner_name=ctx.config.partners[partner.id].name,
        tenants=ctx.config.tenants,
        csrf=partner.session.csrf if partner.session else "",
        posted=values.pop("posted", {}),
        **values,
    )


@router.get("/portal/lookup")
async def lookup_form(request: Request) -> Response:
    partner = await pages.partner(request)
    return _page(request, partner)


@router.post("/portal/lookup")
async def lookup_submit(request: Request) -> Response:
    partner = await pages.partner(request)
    form = await pages.form_of(request, partner.session)
    ctx = auth.context(request)
    posted = {
        k: str(form.get(k, ""))[:_MAX]
        for k in ("tenant", "disaster_id", "family", "given", "birth_date", "area", "official", "approval")
    }
    try:
        born = date.fromisoformat(posted["birth_date"])
    except ValueError:
        return _page(request, partner, 422, errors=["生年月日 / date of birth: YYYY-MM-DD"], posted=posted)
    query = LookupQuery(
        partner=partner.id,
        tenant=posted["tenant"],
        disaster_id=posted["disaster_id"].strip(),
        family=posted["family"],
        given=posted["given"],
        birth_date=born,
        machiaza=posted["area"].strip() or None,
        official=posted["official"].strip(),
        filed_by=f"partner:{partner.id}",
    )
    try:
        answer = await run_in_threadpool(
            lambda: lookup_evacuee(
                ctx.state,
                ctx.config,
                ctx.exports,
                query,
                now=ctx.now(),
                config_dir=ctx.config_dir,
                approval=posted["approval"].strip() or None,
            )
        )
    except UsageError as exc:
        reasons = [messages.on_page(r) for r in getattr(exc, "reasons", ()) or (exc,)]
        return _page(request, partner, 422, errors=reasons, posted=posted)
    return _page(request, partner, answer=answer, posted=posted)


async def _upload(form: Any, name: str, limit: int) -> bytes | None:
    item = form.get(name)
    if item is None or isinstance(item, str):
        return None
    data: bytes = await item.read(limit + 1)
    return data if len(data) <= limit else None


@router.post("/portal/notes")
async def notes_upload(request: Request) -> Response:
    partner = await pages.partner(request)
    form = await pages.form_of(request, partner.session)
    ctx = auth.context(request)
    document = await _upload(form, "notes", MAX_NOTES_BYTES)
    signature = await _upload(form, "signature", 4096)
    if document is None:
        return _page(
            request, partner, 422, note_errors=["PFIF 1.4 の note ファイルを選んでください / choose a notes file"]
        )
    armored = signature.decode("ascii", errors="replace") if signature else None
    try:
        result = await run_in_threadpool(
            lambda: receive_notes(
                ctx.state,
                ctx.config,
                ctx.exports,
                partner=partner.id,
                document=document,
                signature=armored,
                now=ctx.now(),
                via="portal",
            )
        )
    except BcpError as exc:  # unsigned or forged (exit 3) is 401, a malformed document 422
        return _page(request, partner, 401 if exc.exit_code == 3 else 422, note_errors=[messages.on_page(exc)])
    return _page(request, partner, notes_result=result)
