"""The web's errors in its readers' language: pages Japanese first, the API by ``Accept-Language``.

Through the real app (TestClient on the real control database and replica): a portal page's
refusal reads Japanese with the English beside it; an API problem's ``detail`` follows
``Accept-Language`` while ``detail_en`` stays the English line programs match; neither
language ever shows the server's paths or a traceback.
"""

from __future__ import annotations

import json
import shutil
import string
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.requests import Request

from bcpctl.web import messages
from dc.errors import UsageError
from tests.bcpctl.test_i18n import _catalog_tool
from tests.bcpctl.web.conftest import approve_both, basic, request_body, signed_post

REFUSED_JA = "この招待は不明・使用済み・期限切れのいずれかです"
REFUSED_EN = "this invitation is unknown, used or expired"


def _no_internals(text: str, root: Path) -> None:
    assert str(root) not in text and "Traceback" not in text and "/tmp" not in text and 'File "' not in text


def test_a_portal_refusal_is_japanese_with_the_english_beside_it(client: Any, web_site: Any) -> None:
    for accept in ({}, {"Accept-Language": "en"}):  # pages are Japanese first whatever the browser asks
        page = client.get("/portal/enrol/bcpi_nope", headers=accept)
        assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
        assert REFUSED_JA in page.text and REFUSED_EN in page.text
        assert page.text.index(REFUSED_JA) < page.text.index(REFUSED_EN)
        _no_internals(page.text, web_site.root)
    missing = client.get("/portal/no-such-page")
    assert missing.status_code == 404 and "見つかりません" in missing.text and "not found" in missing.text


def test_an_api_problem_follows_accept_language_and_keeps_the_english(client: Any, web_site: Any) -> None:
    path = "/api/operator/requests/no-such-id"
    english = "no export request 'no-such-id'"
    for accept, detail, lang in (
        (None, english, "en"),
        ("en-US,en;q=0.9", english, "en"),
        ("ja", "エクスポート申請 'no-such-id' はありません", "ja"),
        ("ja-JP,ja;q=0.9,en;q=0.8", "エクスポート申請 'no-such-id' はありません", "ja"),
        ("en;q=0.5, ja;q=0.8", "エクスポート申請 'no-such-id' はありません", "ja"),
        ("fr, ja;q=0, garbage;;", english, "en"),
    ):
        headers = basic("ops") | ({"Accept-Language": accept} if accept else {})
        response = client.get(path, headers=headers)
        assert response.status_code == 404 and response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert (body["detail"], body["detail_en"], body["title"]) == (detail, english, "not found"), accept
        assert response.headers["content-language"] == lang and response.headers["vary"] == "Accept-Language"


def _signed(client: Any, site: Any, method: str, path: str, body: Any, lang: str | None) -> Any:
    """A partner's signed call, with ``Accept-Language`` when ``lang`` is given."""
    from dc.clock import utcnow
    from victim_support.partnersig import sign_headers

    raw = json.dumps(body, ensure_ascii=False).encode() if body is not None else b""
    headers = sign_headers(site.partner_key, "koga", method, path, raw, now=utcnow())
    headers |= {"Content-Type": "application/json"} if body is not None else {}
    headers |= {"Accept-Language": lang} if lang else {}
    return client.request(method, path, content=raw or None, headers=headers)


def test_a_policy_refusal_lists_its_reasons_in_both(client: Any, web_site: Any) -> None:
    body = request_body(fields=["name", "個人番号", "phone"], basis="APPI-69-2-3")
    english = _signed(client, web_site, "POST", "/api/partner/requests", body, None).json()
    assert english["detail"].startswith("request rejected: 個人番号 is never exported")
    assert english["reasons"] == english["reasons_en"]
    japanese = _signed(client, web_site, "POST", "/api/partner/requests", body, "ja").json()
    assert japanese["detail"].startswith("申請は認められません: ")
    assert japanese["detail_en"] == english["detail"] and japanese["reasons_en"] == english["reasons"]
    assert all(ja != en for ja, en in zip(japanese["reasons"], japanese["reasons_en"], strict=True))


def test_a_validation_problem_in_japanese_keeps_pydantics_english(client: Any, web_site: Any) -> None:
    body = {**request_body(), "partner": "tsukuba"}
    body.pop("tenant")
    english = _signed(client, web_site, "POST", "/api/partner/requests", body, None).json()
    japanese = _signed(client, web_site, "POST", "/api/partner/requests", body, "ja").json()
    assert english["detail"] == japanese["detail_en"] == english["detail_en"]
    assert {(e["field"], e["problem"]) for e in english["errors"]} == {
        ("tenant", "Field required"),
        ("partner", "Extra inputs are not permitted"),
    }
    assert {(e["field"], e["problem"], e["problem_en"]) for e in japanese["errors"]} == {
        ("tenant", "必須の項目がありません", "Field required"),
        ("partner", "この項目は使えません (余分な項目です)", "Extra inputs are not permitted"),
    }
    assert japanese["detail"].endswith("(ほか 1 件)") and "(and 1 more)" in english["detail"]


def test_an_oversize_body_is_refused_in_the_language_asked(client: Any, web_site: Any) -> None:
    big = json.dumps(request_body(areas=["y" * 50] * 2000)).encode()
    english, japanese = "the request body exceeds 65536 bytes", "要求の本文が 65536 バイトを超えています"
    for lang, detail in ((None, english), ("ja", japanese)):
        headers = {"Content-Type": "application/json"} | ({"Accept-Language": lang} if lang else {})
        response = client.post("/api/partner/requests", content=big, headers=headers)
        assert response.status_code == 413 and response.json()["detail"] == detail
        assert response.json()["detail_en"] == english


def test_a_broken_replica_shows_no_server_path_in_either_language(client: Any, web_site: Any) -> None:
    """The offsite replica vanished after approval: the partner learns the request failed, not where."""
    request_id = signed_post(client, web_site.partner_key, "/api/partner/requests", request_body()).json()["id"]
    approve_both(client, request_id)
    shutil.move(web_site.root / "offsite", web_site.root / "offsite.gone")
    for lang in (None, "ja"):
        response = _signed(client, web_site, "GET", f"/api/partner/requests/{request_id}/bundle", None, lang)
        assert response.status_code >= 400 and response.headers["content-type"] == "application/problem+json"
        _no_internals(response.text, web_site.root)
        assert response.json()["detail"] and response.json()["detail_en"], response.text


def _request(accept: str) -> Request:
    return Request({"type": "http", "headers": [(b"accept-language", accept.encode("latin-1"))]})


def _catalog_templates() -> list[str]:
    """Every message of the catalog that an error can carry: the core's and the CLI's and web's own."""
    tool = _catalog_tool()
    with tool.PO.open("rb") as f:
        po = read_po(f, locale="ja")
    return sorted(m.id for m in po if isinstance(m.id, str) and m.id and "%(" not in m.id)


_TEMPLATES = _catalog_templates()
_PATHS = st.sampled_from(["/srv/bcp/offsite", "file:///var/lib/bcpctl/repo", "/home/ops/.config/x.yaml"])


def _fields(template: str) -> list[tuple[str, str]]:
    return [(f, spec or "") for _, f, spec, _c in string.Formatter().parse(template) if f is not None]


@st.composite
def _errors(draw: st.DrawFn) -> tuple[UsageError, list[str]]:
    template = draw(st.sampled_from(_TEMPLATES))
    params: dict[str, object] = {}
    paths: list[str] = []
    for name, spec in _fields(template):
        # a command's template may read an item of a mapping (``{p[objects]}``): counts, not paths
        base, _, item = name.partition("[")
        value: object
        if spec:
            value = draw(st.floats(min_value=0, max_value=1e6, allow_nan=False))
        elif not item and draw(st.booleans()):
            value = draw(_PATHS)
            paths.append(str(value))
        else:
            value = draw(st.text(alphabet=string.ascii_letters + "町字 -_", min_size=1, max_size=10))
        params[base] = {item.rstrip("]"): value} if item else value
    return UsageError(template, **params), paths


@settings(max_examples=300, derandomize=True, deadline=None)
@given(_errors())
def test_every_template_renders_in_both_languages_without_a_server_path(built: tuple[UsageError, list[str]]) -> None:
    """Any template of the catalog (core, CLI and web) as an error's message, any values: one line
    in each language, no KeyError, and a value that is a server path never shown."""
    error, paths = built
    for lang in ("ja", "en"):
        shown, english = messages.in_language(error, lang)
        assert "\n" not in shown and "\n" not in english
        assert not any(p in shown or p in english for p in paths)
        if lang == "en" and not paths:
            assert english == error.message.strip().splitlines()[0] or not error.message.strip()
    page = messages.on_page(error)
    assert not any(p in page for p in paths)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=255), max_size=60))
def test_any_accept_language_header_gives_ja_or_en(header: str) -> None:
    assert messages.request_language(_request(header)) in ("ja", "en")
