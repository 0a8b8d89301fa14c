"""The portal page an operator's one-time invitation opens: a municipality enrols itself, pending a phone call.

The token in the path is the only credential (there is no account yet); the same message
answers an unknown, used or expired one. A cross-origin post is refused. The submitted form
enrols nobody: the page shows both fingerprints for the official to read aloud to the
operator, who enrols the partner with ``bcpctl partner confirm`` (:mod:`victim_support.invitation`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from bcpctl.web import auth, messages, pages
from dc.errors import AuthError, UsageError
from victim_support.invitation import invited_partner, submit

router = APIRouter(include_in_schema=False)
#: a name, a code, one key line or a short list of officials: nothing longer belongs in this form
_MAX = 2000
FIELDS = ("name", "lg_code", "age_recipient", "verify_key", "officials")


def _page(request: Request, partner_id: str, status: int = 200, **values: Any) -> Response:
    return pages.render(
        request,
        "portal_enrol.html",
        http_status=status,
        partner_id=partner_id,
        posted=values.pop("posted", {}),
        **values,
    )


@router.get("/portal/enrol/{token}")
async def enrol_form(request: Request, token: str) -> Response:
    ctx = auth.context(request)
    try:
        partner_id = await run_in_threadpool(invited_partner, ctx.state, token, ctx.now())
    except AuthError as exc:
        return pages.error_page(request, 403, exc)
    return _page(request, partner_id)


@router.post("/portal/enrol/{token}")
async def enrol_submit(request: Request, token: str) -> Response:
    ctx = auth.context(request)
    origin = request.headers.get("origin")
    if origin is not None and urlparse(origin).netloc != request.headers.get("host", ""):
        return pages.error_page(request, 403, "cross-origin request refused")
    form = await request.form()
    posted = {k: str(form.get(k, ""))[:_MAX] for k in FIELDS}
    officials = [line.strip() for line in posted["officials"].splitlines() if line.strip()]
    try:
        partner_id = await run_in_threadpool(invited_partner, ctx.state, token, ctx.now())
    except AuthError as exc:
        return pages.error_page(request, 403, exc)
    try:
        done, (age_fp, key_fp) = await run_in_threadpool(
            lambda: submit(
                ctx.state,
                ctx.config,
                token,
                name=posted["name"],
                lg_code=posted["lg_code"].strip(),
                age_recipient=posted["age_recipient"],
                verify_key=posted["verify_key"],
                officials=officials,
                now=ctx.now(),
            )
        )
    except AuthError as exc:
        return pages.error_page(request, 403, exc)
    except UsageError as exc:
        return _page(request, partner_id, 400, posted=posted, errors=[messages.on_page(exc)])
    return _page(request, partner_id, submitted=done, age_fingerprint=age_fp, key_fingerprint=key_fp)
