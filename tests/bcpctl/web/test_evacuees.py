"""Finding and hearing back about evacuees on the web: the portal lookup page, estimates for approvers, signed notes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
import yaml

from tests.bcpctl.web.conftest import basic


@pytest.fixture
def lookup_client(web_site: Any) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from bcpctl.web.app import create_app
    from bcpctl.web.context import WebContext

    doc = yaml.safe_load(web_site.config_path.read_text())
    doc["exports"]["lookups"] = {"partners": ["koga"], "disasters": ["2026-kanto-eq"], "answer_seconds": 0}
    web_site.config_path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    ctx = WebContext.load(web_site.config_path)
    with TestClient(create_app(ctx), base_url="https://testserver") as client:
        client.web_ctx = ctx  # type: ignore[attr-defined]
        yield client
    ctx.state.dispose()


def _someone_found(ctx: Any, web_site: Any) -> str:
    """A lookup by koga that found a real resident of 五霞町 (what entitles it to send notes): their person_ref."""
    from victim_support.lookup import lookup_evacuee
    from victim_support.lookuprules import LookupQuery
    from victim_support.settings import LookupRule

    person = _person(web_site, "not shien_sochi and not yokushi")
    rule = LookupRule(partners=("koga",), disasters=("2026-kanto-eq",), answer_seconds=0)
    query = LookupQuery("koga", "goka", "2026-kanto-eq", person["family_name"], person["given_name"],
                        date.fromisoformat(person["birth_date"]), None, "古河市 鈴木")  # fmt: skip
    answer = lookup_evacuee(ctx.state, ctx.config, ctx.exports.model_copy(update={"lookups": rule}), query,
                            now=ctx.now(), config_dir=ctx.config_dir)  # fmt: skip
    return str(answer.candidates[0]["person_ref"])


def _login(client: Any) -> str:
    token = client.post("/api/operator/partners/koga/tokens", json={}, headers=basic("ops")).json()["token"]
    assert client.post("/portal/login", data={"token": token}, follow_redirects=False).status_code == 303
    page = client.get("/portal/lookup")
    assert page.status_code == 200
    return page.text.split('name="csrf" value="')[1].split('"')[0]


def _person(web_site: Any, where: str) -> sqlite3.Row:
    conn = sqlite3.connect(web_site.root / "goka-juki.sqlite")
    conn.row_factory = sqlite3.Row
    return conn.execute(f"select * from residents where status='1' and {where} order by atena_no limit 1").fetchone()


def test_the_portal_finds_one_evacuee_and_hides_protected_ones(lookup_client: Any, web_site: Any) -> None:
    csrf = _login(lookup_client)
    person = _person(web_site, "not shien_sochi and not yokushi")
    form = {"csrf": csrf, "tenant": "goka", "disaster_id": "2026-kanto-eq", "family": person["family_name_kana"],
            "given": person["given_name"], "birth_date": person["birth_date"], "official": "古河市 鈴木"}  # fmt: skip
    found = lookup_client.post("/portal/lookup", data=form)
    assert found.status_code == 200 and person["given_name"] in found.text and "data-lookup=" in found.text
    assert person["atena_no"] not in found.text and person["kojin_bango"] not in found.text

    protected = _person(web_site, "shien_sochi")
    hidden = lookup_client.post("/portal/lookup", data={**form, "family": protected["family_name"],
                                "given": protected["given_name"], "birth_date": protected["birth_date"]})  # fmt: skip
    assert (
        hidden.status_code == 200
        and "該当者なし" in hidden.text
        and protected["given_name"] not in hidden.text.split('id="answer"')[1]
    )

    # the home town's approvers find the notice on their dashboard; the partner never sees it
    lookup_id = hidden.text.split('data-lookup="')[1].split('"')[0]
    dashboard = lookup_client.get("/dashboard", headers=basic("goka-suzuki"))
    assert 'id="notices"' in dashboard.text and lookup_id in dashboard.text
    assert lookup_id not in lookup_client.get("/portal").text
    refused = lookup_client.post("/portal/lookup", data={**form, "family": "*"})
    assert refused.status_code == 422 and "wildcard" in refused.text
    assert lookup_client.post("/portal/lookup", data={**form, "csrf": "forged"}).status_code == 403


def test_under_the_approval_rule_the_portal_shows_the_wait_and_takes_the_code(web_site: Any) -> None:
    from datetime import UTC, datetime

    from fastapi.testclient import TestClient

    from bcpctl.web.app import create_app
    from bcpctl.web.context import WebContext
    from tests.victim_support.conftest import APPROVER_SECRETS
    from victim_support.lookupapproval import approve_lookup

    doc = yaml.safe_load(web_site.config_path.read_text())
    doc["exports"]["lookups"] = {"disasters": ["2026-kanto-eq"], "answer_seconds": 0, "approval": {"koga": "approval"}}
    web_site.config_path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    ctx = WebContext.load(web_site.config_path)
    with TestClient(create_app(ctx), base_url="https://testserver") as client:
        csrf = _login(client)
        person = _person(web_site, "not shien_sochi and not yokushi")
        form = {"csrf": csrf, "tenant": "goka", "disaster_id": "2026-kanto-eq", "family": person["family_name"],
                "given": person["given_name"], "birth_date": person["birth_date"],
                "official": "古河市 鈴木"}  # fmt: skip
        waiting = client.post("/portal/lookup", data=form)
        assert waiting.status_code == 200 and 'id="waiting"' in waiting.text and "該当者なし" not in waiting.text
        assert person["given_name"] not in waiting.text.split('id="answer"')[1]
        code = waiting.text.split('id="waiting"')[1].split("<code>")[1].split("</code>")[0]
        lookup_id = code.split(".")[0]
        approve_lookup(ctx.state, ctx.config, ctx.exports, lookup_id, approver="goka-suzuki",
                       secret=APPROVER_SECRETS["goka-suzuki"], now=datetime.now(UTC))  # fmt: skip
        found = client.post("/portal/lookup", data={**form, "approval": code})
        assert found.status_code == 200 and person["given_name"] in found.text.split('id="answer"')[1]
        again = client.post("/portal/lookup", data={**form, "approval": code})
        assert again.status_code == 422 and "approval code is unknown" in again.text
    ctx.state.dispose()


def test_approvers_see_the_estimate_of_a_filed_request(client: Any) -> None:
    from tests.bcpctl.web.test_pages import _partner_login

    csrf = _partner_login(client)
    posted = {"csrf": csrf, "tenant": "goka", "basis": "APPI-69-2-3", "disaster_id": "2026-kanto-eq",
              "disaster_date": "2026-11-20", "purposes": ["EVACUEE_IDENTIFICATION"], "fields": ["name", "address"],
              "all_areas": "1", "requested_by": "古河市 山田"}  # fmt: skip
    unknown = client.post("/portal/requests", data={**posted, "all_areas": "", "areas": ["1"]})
    assert unknown.status_code == 422
    filed = client.post("/portal/requests", data=posted, follow_redirects=False)
    assert filed.status_code == 303, filed.text
    dashboard = client.get("/dashboard", headers=basic("goka-suzuki"))
    assert "見込み / estimate:" in dashboard.text and "protected excluded" in dashboard.text


def test_the_signed_api_takes_signed_notes_only(client: Any, web_site: Any, web_ctx: Any) -> None:
    from datetime import UTC, datetime

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from tests.bcpctl.web.conftest import signed_post
    from victim_support.notes import NAMESPACE, whereabouts
    from victim_support.pfifnote import Note, notes_document
    from victim_support.signing import sign

    ref = _someone_found(web_ctx, web_site)
    note = Note("city.koga.lg.jp/n1", f"town.goka.lg.jp/{ref}", "古河市 鈴木", datetime(2026, 11, 21, tzinfo=UTC),
                "避難所で面会", status="is_note_author", last_known_location="古河第一小学校")  # fmt: skip
    document = notes_document([note])
    body = {"notes": document.decode(), "signature": sign(web_site.partner_key, document, NAMESPACE)}
    forged = {**body, "signature": sign(Ed25519PrivateKey.generate(), document, NAMESPACE)}
    assert signed_post(client, web_site.partner_key, "/api/partner/notes", forged).status_code == 401
    token = client.post("/api/operator/partners/koga/tokens", json={}, headers=basic("ops")).json()["token"]
    by_token = client.post("/api/partner/notes", json=body, headers={"Authorization": f"Bearer {token}"})
    assert by_token.status_code == 401
    assert whereabouts(web_ctx.state, "goka") == []
    done = signed_post(client, web_site.partner_key, "/api/partner/notes", body)
    assert done.status_code == 200 and done.json()["stored"] == 1, done.text
    (person,) = whereabouts(web_ctx.state, "goka")
    assert person.shelter == "古河第一小学校" and person.partner == "koga"


def test_the_portal_takes_an_uploaded_signed_notes_file(lookup_client: Any, web_site: Any) -> None:
    from datetime import UTC, datetime

    from victim_support.notes import NAMESPACE
    from victim_support.pfifnote import Note, notes_document
    from victim_support.signing import sign

    csrf = _login(lookup_client)
    ref = _someone_found(lookup_client.web_ctx, web_site)
    note = Note("city.koga.lg.jp/p1", f"town.goka.lg.jp/{ref}", "古河市 鈴木", datetime(2026, 11, 21, tzinfo=UTC),
                "面会", status="believed_alive", last_known_location="古河市 体育館")  # fmt: skip
    document = notes_document([note])
    good = sign(web_site.partner_key, document, NAMESPACE).encode()
    unsigned = lookup_client.post("/portal/notes", data={"csrf": csrf}, files={"notes": ("n.xml", document)})
    assert unsigned.status_code == 401 and "not signed" in unsigned.text
    tampered = document.replace("面会".encode(), "不明".encode())
    forged = lookup_client.post(
        "/portal/notes", data={"csrf": csrf}, files={"notes": ("n.xml", tampered), "signature": ("n.sig", good)}
    )
    assert forged.status_code == 401
    done = lookup_client.post(
        "/portal/notes", data={"csrf": csrf}, files={"notes": ("n.xml", document), "signature": ("n.sig", good)}
    )
    assert done.status_code == 200 and 'id="notes-result"' in done.text and "1 件を記録しました" in done.text


def test_a_partner_removed_while_the_server_runs_is_refused_at_once(client: Any, web_site: Any, web_ctx: Any) -> None:
    from tests.bcpctl.web.conftest import request_body, signed_post
    from victim_support.tokens import remove_partner

    token = client.post("/api/operator/partners/koga/tokens", json={}, headers=basic("ops")).json()["token"]
    assert client.get("/api/partner/requests", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    remove_partner(web_ctx.state, web_ctx.config, "koga", actor="ops", now=web_ctx.now())
    assert client.get("/api/partner/requests", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert signed_post(client, web_site.partner_key, "/api/partner/requests", request_body()).status_code == 401
