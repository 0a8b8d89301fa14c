"""Pages without a browser: login, CSRF on form posts, the form's refusals, roles on the dashboard."""

from __future__ import annotations

from typing import Any

from tests.bcpctl.web.conftest import PASSWORDS, basic


def _csrf(html: str) -> str:
    return html.split('name="csrf" value="')[1].split('"')[0]


def _partner_login(client: Any) -> str:
    token = client.post("/api/operator/partners/koga/tokens", json={}, headers=basic("ops")).json()["token"]
    login = client.post("/portal/login", data={"token": token}, follow_redirects=False)
    assert login.status_code == 303 and login.headers["location"] == "/portal"
    return _csrf(client.get("/portal?tenant=goka&basis=DMA-49-11-3").text)


def test_pages_redirect_to_login_and_refuse_wrong_credentials(client: Any) -> None:
    assert client.get("/dashboard", follow_redirects=False).headers["location"] == "/login"
    assert client.get("/portal", follow_redirects=False).headers["location"] == "/portal/login"
    wrong = client.post("/login", data={"name": "ops", "password": "nope"})
    assert wrong.status_code == 401 and "wrong name or password" in wrong.text
    assert client.post("/portal/login", data={"token": "bcpt_x_y"}).status_code == 401
    cross = client.post(
        "/login", data={"name": "ops", "password": PASSWORDS["ops"]}, headers={"Origin": "https://evil.invalid"}
    )
    assert cross.status_code == 403


def test_form_posts_without_csrf_change_nothing(client: Any, web_ctx: Any) -> None:
    from victim_support.audit import read_entries

    csrf = _partner_login(client)
    before = len(read_entries(web_ctx.state))
    form = {"tenant": "goka", "basis": "DMA-49-11-3", "disaster_id": "x", "disaster_date": "2026-11-20"}
    refused = client.post("/portal/requests", data=form)
    assert refused.status_code == 403 and "CSRF" in refused.text
    assert client.post("/portal/requests", data={**form, "csrf": "forged"}).status_code == 403
    assert len(read_entries(web_ctx.state)) == before
    assert csrf


def test_the_form_shows_the_law_and_every_refusal(client: Any) -> None:
    csrf = _partner_login(client)
    page = client.get("/portal?tenant=goka&basis=DMA-49-11-3").text
    assert "災害対策基本法第49条の11第3項" in page and 'name="support_only" value="1"' in page
    assert "個人番号 is never exported" in page
    posted = {
        "csrf": csrf,
        "tenant": "goka",
        "basis": "DMA-49-11-3",
        "disaster_id": "令和8年茨城県南部地震",
        "disaster_date": "2026-11-20",
        "purposes": ["WELFARE_CHECK"],
        "fields": ["name", "relationship"],
        "all_areas": "1",
        "support_only": "1",
        "requested_by": "古河市 佐藤",
    }
    refused = client.post("/portal/requests", data=posted)
    assert refused.status_code == 422
    assert "field relationship is not allowed under DMA-49-11-3" in refused.text
    accepted = client.post("/portal/requests", data={**posted, "fields": ["name", "phone"]}, follow_redirects=False)
    assert accepted.status_code == 303 and "/portal/requests/exp-" in accepted.headers["location"]
    status = client.get(accepted.headers["location"])
    assert "申請を受け付けました" in status.text and "pending" in status.text
    assert "X-Content-Type-Options" in status.headers or "x-content-type-options" in status.headers
    assert "script-src 'none'" in status.headers["content-security-policy"]


def test_dashboard_offers_only_what_the_role_allows(client: Any) -> None:
    for name, sees, hidden in (
        ("audit", "/dashboard/audit", "/dashboard/tokens"),
        ("ops", "/dashboard/tokens", "/dashboard/audit"),
    ):
        client.post("/login", data={"name": name, "password": PASSWORDS[name]})
        page = client.get("/dashboard").text
        assert sees in page and hidden not in page
        forbidden = client.get("/dashboard/audit")
        assert forbidden.status_code == (200 if name == "audit" else 403)
        client.post("/logout", data={"csrf": _csrf(page)})
        assert client.get("/dashboard", follow_redirects=False).status_code == 303
