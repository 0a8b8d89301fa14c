"""Approving on the web follows the CLI's rule: the approver's own secret, not just the login.

Web accounts live in the control database, which an approval must be safe against, so a
login alone never approves: the body carries the approver's secret and the same core call
(``victim_support.decisions.decide``) checks it. Also: the portal evaluates the law tables
once, on the JST calendar day.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from tests.bcpctl.web.conftest import basic, proof, request_body
from tests.victim_support.conftest import APPROVER_SECRETS


def _request(client, web_site, **overrides) -> str:  # type: ignore[no-untyped-def]
    from tests.bcpctl.web.conftest import signed_post

    response = signed_post(client, web_site.partner_key, "/api/partner/requests", request_body(**overrides))
    assert response.status_code == 201, response.text
    return response.json()["id"]  # type: ignore[no-any-return]


def _recorded(web_ctx) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    from victim_support.audit import read_entries
    from victim_support.store import list_requests

    (request,) = list_requests(web_ctx.state, web_ctx.exports, web_ctx.now())
    return len(read_entries(web_ctx.state)), request.stored_status


def test_a_login_without_the_approver_secret_approves_nothing(client, web_site, web_ctx) -> None:  # type: ignore[no-untyped-def]
    request_id = _request(client, web_site)
    before = _recorded(web_ctx)
    base = f"/api/operator/requests/{request_id}"
    for path, body, detail in [
        (f"{base}/approve", {}, "no approver secret"),
        (f"{base}/approve", {"approver_secret": APPROVER_SECRETS["goka-tanaka"]}, "does not match approver"),
        (f"{base}/deny", {"reason": "no", "approver_secret": "wrong-secret-0000"}, "does not match approver"),
        (f"{base}/deny", {"reason": "no"}, "no approver secret"),
    ]:
        response = client.post(path, json=body, headers=basic("goka-suzuki"))
        assert response.status_code == 403 and detail in response.json()["detail"], response.text
        assert all(secret not in response.text for secret in APPROVER_SECRETS.values())
    assert _recorded(web_ctx) == before == (before[0], "pending")


def test_the_dashboard_form_needs_the_secret_too(client, web_site, web_ctx) -> None:  # type: ignore[no-untyped-def]
    request_id = _request(client, web_site)
    client.post("/login", data={"name": "goka-suzuki", "password": "suzuki-password-01"}, follow_redirects=False)
    dashboard = client.get("/dashboard")
    assert 'name="approver_secret" type="password"' in dashboard.text
    csrf = dashboard.text.split('name="csrf" value="')[1].split('"')[0]
    before = _recorded(web_ctx)
    refused = client.post(f"/dashboard/requests/{request_id}/approve", data={"csrf": csrf}, follow_redirects=False)
    assert refused.status_code == 403 and "no approver secret" in refused.text
    assert _recorded(web_ctx) == before
    done = client.post(
        f"/dashboard/requests/{request_id}/approve",
        data={"csrf": csrf, "approver_secret": APPROVER_SECRETS["goka-suzuki"]},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert _recorded(web_ctx)[0] == before[0] + 1


def test_a_web_approval_is_signed_like_a_cli_one(client, web_site, web_ctx) -> None:  # type: ignore[no-untyped-def]
    from dc.approvers import verify
    from victim_support.audit import read_entries

    request_id = _request(client, web_site)
    done = client.post(
        f"/api/operator/requests/{request_id}/approve", json=proof("goka-suzuki"), headers=basic("goka-suzuki")
    )
    assert done.status_code == 200, done.text
    (entry,) = [e for e in read_entries(web_ctx.state) if e.action == "request.approved"]
    details = json.loads(entry.details)
    assert details["approval"]["via"] == "web:password" and details["approval"]["request"] == request_id
    assert verify(web_ctx.config.approvers, details) is None


def test_the_portal_rejects_with_the_reasons_of_the_jst_day(client, web_site, web_ctx) -> None:  # type: ignore[no-untyped-def]
    """08:30 JST on 11-21 is 23:30 UTC on 11-20: a disaster dated 11-21 is today, not "in the future"."""
    from victim_support.partnersig import sign_headers

    at = datetime(2026, 11, 20, 23, 30, tzinfo=UTC)
    web_ctx.clock = lambda: at
    path = "/api/partner/requests"

    def submit(**overrides: object):  # type: ignore[no-untyped-def]
        raw = json.dumps(request_body(disaster_date="2026-11-21", **overrides), ensure_ascii=False).encode()
        headers = sign_headers(web_site.partner_key, "koga", "POST", path, raw, now=at)
        return client.post(path, content=raw, headers={**headers, "Content-Type": "application/json"})

    allowed = submit()
    assert allowed.status_code == 201, allowed.text
    rejected = submit(fields=["name", "phone"])  # phone is not an APPI-69-2-3 field
    assert rejected.status_code == 422
    reasons = rejected.json()["reasons"]
    assert reasons and all("in the future" not in r for r in reasons), reasons


def test_a_request_approved_by_sql_is_not_delivered(client, web_site, web_ctx) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import update

    from tests.bcpctl.web.conftest import signed_get
    from victim_support.store import export_requests

    request_id = _request(client, web_site)
    with web_ctx.state.begin() as conn:
        conn.execute(update(export_requests).where(export_requests.c.id == request_id).values(status="approved"))
    path = f"/api/partner/requests/{request_id}/bundle"
    refused = signed_get(client, web_site.partner_key, path)
    assert refused.status_code == 409 and "does not match the audit log" in refused.json()["detail"]
    assert "goka-" not in refused.text  # approver names stay the data center's business
    assert not any((web_site.root / "bundles").glob(f"{request_id}*"))
