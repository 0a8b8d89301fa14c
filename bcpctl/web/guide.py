"""The partner's pages that hold no data: opening a bundle in this browser, and how to keep, use and delete the list.

Both work without a login — a partner may hold a bundle on a USB stick and no token — and
show nothing from the control database. The opener is the portal's only page with script;
its own Content-Security-Policy lets it load this site's scripts and nothing else, and forbids
every network request and form submission (``connect-src 'none'``, ``form-action 'none'``),
so the age identity the partner picks is read into the page and cannot leave the machine.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from bcpctl.web import pages

router = APIRouter(include_in_schema=False)

#: The opener's policy (the default policy forbids every script).
OPENER_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'none'; "
    "form-action 'none'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


@router.get("/portal/open")
async def open_page(request: Request) -> Response:
    response = pages.render(request, "portal_open.html")
    response.headers["Content-Security-Policy"] = OPENER_CSP
    return response


@router.get("/portal/guide")
async def guide_page(request: Request) -> Response:
    return pages.render(request, "portal_guide.html")
