"""The partner portal's practice switch: a 訓練 export to the logged-in partner, nobody real in it.

A partner's official rehearses what the day will ask of them — receive a bundle, open it with
their own age identity, read the files — without anyone approving a real request: the page
runs :func:`victim_support.exportdrill.run_export_drill` for the logged-in partner (never a
form field) and answers with the sealed 訓練 bundle, encrypted to the partner's registered
recipient and opened on their side, not ours. The run is recorded like every drill, the
actor being the partner. A rehearsal restores the replica to learn its shape, so one partner
gets one per minute.
"""

from __future__ import annotations

import io
import shutil
import tarfile
import tempfile
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from bcpctl.web import auth, messages, pages
from dc.errors import BcpError
from victim_support.exportdrill import TRAINING, run_export_drill

router = APIRouter(include_in_schema=False)


def _page(request: Request, partner: auth.Partner, status: int = 200, **values: object) -> Response:
    ctx = auth.context(request)
    return pages.render(
        request,
        "portal_practice.html",
        http_status=status,
        partner=partner,
        tenants=ctx.config.tenants,
        csrf=partner.session.csrf if partner.session else "",
        **values,
    )


@router.get("/portal/practice")
async def practice_form(request: Request) -> Response:
    return _page(request, await pages.partner(request))


@router.post("/portal/practice")
async def practice_run(request: Request) -> Response:
    partner = await pages.partner(request)
    form = await pages.form_of(request, partner.session)
    ctx = auth.context(request)
    tenant = str(form.get("tenant", ""))[:64]
    if tenant not in ctx.config.tenants:
        return _page(request, partner, 400, errors=["被災市町村を選んでください / choose a home town"])
    if wait := ctx.practice_limiter.take(partner.id):
        return _page(request, partner, 429, errors=[f"練習は1分に1回です / one practice a minute ({wait:.0f} s)"])
    work = Path(tempfile.mkdtemp(prefix="bcpctl-practice-"))
    try:
        result = await run_in_threadpool(
            lambda: run_export_drill(
                ctx.state,
                ctx.config,
                ctx.exports,
                tenant_id=tenant,
                partner_id=partner.id,
                out=work,
                now=ctx.now(),
                actor=f"partner:{partner.id}",
                config_dir=ctx.config_dir,
            )
        )
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for member in sorted(result.bundle.iterdir()):
                tar.add(member, arcname=f"{result.bundle.name}/{member.name}", recursive=False)
    except BcpError as exc:
        return _page(request, partner, 400, errors=[messages.on_page(exc)])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    name = f"{result.bundle.name}.tar"
    return Response(
        buffer.getvalue(),
        media_type="application/x-tar",
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
            "Cache-Control": "no-store",
            "X-Bcpctl-Drill-Run": result.run_id,
            "X-Bcpctl-Drill": quote(TRAINING),
        },
    )
