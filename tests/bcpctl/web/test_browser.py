"""End to end in a real browser: a partner requests, two approvers approve, the partner downloads and opens.

Everything goes through the pages a person would use on a tablet — the operator issues the
partner's token on the dashboard, the partner logs in with it and files the request with the
form, each approver logs in and approves, and the partner downloads the bundle, which the
test then verifies and decrypts with the partner's age identity. Screenshots go to
``test-artifacts/web/``.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from typing import Any

import pytest

from tests.bcpctl.web.browser import browser_context, shot
from tests.bcpctl.web.conftest import DISASTER_DATE, PASSWORDS
from tests.servers.asgi import serving
from tests.victim_support.conftest import APPROVER_SECRETS


@pytest.fixture
def live(web_ctx: Any) -> Iterator[str]:
    from bcpctl.web.app import create_app

    with serving(create_app(web_ctx)) as base:
        yield base


def _login(page: Any, base: str, name: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORDS[name])
    page.click("button[type=submit]")
    page.wait_for_load_state()
    if not page.url.endswith("/dashboard"):
        shot(page, "debug-login")
        raise AssertionError(f"login went to {page.url}: {page.inner_text('main')[:300]}")


def _logout(page: Any) -> None:
    page.click("header form.logout button")
    page.wait_for_load_state()


def test_partner_requests_approvers_approve_partner_downloads_and_decrypts(
    live: str, web_site: Any, web_ctx: Any, tmp_path: Any
) -> None:
    from victim_support.bundle import open_bundle
    from victim_support.signing import load_verify_key

    with browser_context(tmp_path / "profile", tmp_path / "downloads") as context:
        page = context.new_page()

        # The operator issues koga's token on the dashboard and starts a drill.
        _login(page, live, "ops")
        page.select_option("#tokens select[name=partner]", "koga")
        page.fill("#tokens input[name=label]", "避難所タブレット")
        page.click("#tokens button[type=submit]")
        token = page.inner_text("#token").strip()
        assert token.startswith("bcpt_")
        page.goto(f"{live}/dashboard")
        page.click("#drills button[type=submit]")
        page.wait_for_url(f"{live}/dashboard?done=drill#drills")
        web_ctx.jobs.wait(120)
        page.goto(f"{live}/dashboard")
        assert page.locator("tr[data-system=goka-juki] .light.green").count() == 1
        shot(page, "01-dashboard-recoverable")
        _logout(page)

        # The partner logs in with the token and files a request through the form.
        page.goto(f"{live}/portal/login")
        page.fill("input[name=token]", token)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live}/portal")
        page.select_option("select[name=tenant]", "goka")
        page.select_option("select[name=basis]", "APPI-69-2-3")
        page.click("form[method=get] button[type=submit]")
        page.wait_for_selector("form.request-form")
        phone = page.locator("input[name=fields][value=phone]")
        assert phone.is_disabled()
        assert "APPI-69-2-3" in page.locator("label.check", has=phone).inner_text()
        page.fill("input[name=disaster_id]", "令和8年茨城県南部地震")
        page.fill("input[name=disaster_date]", DISASTER_DATE.isoformat())
        for purpose in ("EVACUEE_IDENTIFICATION", "SAFETY_CONFIRMATION"):
            page.check(f"input[name=purposes][value={purpose}]")
        for field in ("name", "name_kana", "birth_date", "sex", "machiaza_id", "machiaza_name", "banchi"):
            page.check(f"input[name=fields][value={field}]")
        areas = page.locator("input[name=areas]")
        for index in range(3):
            areas.nth(index).check()
        page.check("input[name=formats][value=pfif]")
        page.fill("input[name=requested_by]", "古河市 危機管理課 佐藤")
        shot(page, "02-portal-request-form")
        page.click("form.request-form button[type=submit]")
        page.wait_for_url(f"{live}/portal/requests/*")
        request_id = page.url.rsplit("/", 1)[-1].split("?")[0]
        assert page.locator(".badge.pending").count() == 1
        shot(page, "03-portal-request-pending")
        _logout(page)

        # Two approvers of 五霞町 approve on the dashboard (two-person rule for APPI-69-2-3).
        for approver, expected in (("goka-suzuki", "1/2"), ("goka-tanaka", None)):
            _login(page, live, approver)
            card = page.locator(f"article[data-request='{request_id}']")
            assert card.count() == 1
            if approver == "goka-suzuki":
                shot(page, "04-dashboard-pending-request")
            card.locator("form[action$='/approve'] input[name=approver_secret]").fill(APPROVER_SECRETS[approver])
            card.locator("form[action$='/approve'] button").click()
            page.wait_for_url(f"{live}/dashboard?done=approved#requests")
            if expected:
                assert (
                    f"{expected[0]}/{expected[2]}" in page.locator(f"article[data-request='{request_id}']").inner_text()
                )
            else:
                assert page.locator(f"article[data-request='{request_id}']").count() == 0
            _logout(page)

        # The partner downloads the bundle.
        page.goto(f"{live}/portal/login")
        page.fill("input[name=token]", token)
        page.click("button[type=submit]")
        page.goto(f"{live}/portal/requests/{request_id}")
        assert page.locator(".badge.approved").count() == 1
        with page.expect_download() as download_info:
            page.click("#download")
        download = download_info.value
        saved = tmp_path / download.suggested_filename
        download.save_as(saved)
        page.reload()
        shot(page, "05-portal-downloaded")
        page.fill("input[name=deleted_by]", "古河市 危機管理課 佐藤")
        page.click("form[action$='/deletion'] button")
        page.wait_for_url(f"{live}/portal/requests/{request_id}?done=deleted")
        assert "削除確認済み" in page.inner_text("main")
        shot(page, "06-portal-deletion-confirmed")

    with tarfile.open(saved) as tar:
        tar.extractall(tmp_path / "received", filter="data")
    bundle = next((tmp_path / "received").iterdir())
    opened = open_bundle(
        bundle,
        web_site.partner_identity,
        load_verify_key(web_site.tenant_verify_key),
        tmp_path / "plain",
        web_ctx.now(),
    )
    rows = (tmp_path / "plain" / "persons.csv").read_text(encoding="utf-8").splitlines()
    header = rows[0].split(",")
    assert header[:2] == ["個人参照 (提供先ごとの仮名ID)", "世帯参照 (提供先ごとの仮名ID)"]
    assert [f["key"] for f in opened.manifest["fields"]][:2] == ["person_ref", "household_ref"]
    assert "連絡先" not in header and not {"個人番号", "kojin_bango", "phone"} & set(header)
    assert len(rows) - 1 == opened.manifest["counts"]["rows"] > 0
    assert {m.split(",")[0] for m in rows[1:]}  # pseudonymous references, one per row
    assert (tmp_path / "plain" / "pfif.xml").exists()
    from victim_support.audit import read_entries, verify_entries

    entries = read_entries(web_ctx.state)
    assert verify_entries(entries).ok
    trail = [e.action for e in entries if e.subject == request_id]
    assert trail == [
        "request.created",
        "request.approved",
        "request.approved",
        "bundle.built",
        "bundle.downloaded",
        "bundle.deletion_confirmed",
    ]
