"""A partner's bundle download and deletion confirmation, the same for the signed API and the portal.

The two surfaces differ only in how the partner proved who they are (``via``), so the calls
into :mod:`victim_support.delivery` and the response that carries the bundle live here once.
"""

from __future__ import annotations

from fastapi.responses import FileResponse

from bcpctl.web.context import WebContext
from bcpctl.web.models import Deletion
from victim_support import delivery


def bundle_response(ctx: WebContext, request_id: str, partner_id: str, via: str) -> FileResponse:
    """The signed, age-encrypted bundle of an approved request (built from the offsite replica on first download)."""
    found = delivery.download(
        ctx.state,
        ctx.config,
        ctx.exports,
        request_id,
        partner_id,
        bundle_root=ctx.bundle_root,
        config_dir=ctx.config_dir,
        now=ctx.now(),
        via=via,
    )
    return FileResponse(
        found.path, media_type="application/x-tar", filename=found.filename, headers={"Cache-Control": "no-store"}
    )


def confirm_deletion(ctx: WebContext, request_id: str, partner_id: str, body: Deletion, via: str) -> None:
    """Record the partner's confirmation that every copy of the bundle was deleted."""
    delivery.confirm_deletion(
        ctx.state,
        ctx.exports,
        request_id,
        partner_id,
        deleted_by=body.deleted_by,
        note=body.note,
        now=ctx.now(),
        via=via,
    )
