"""The partner API: signed submission, status, download of ciphertext only, deletion at expiry."""

from __future__ import annotations

import io
import json
import tarfile
from datetime import timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from tests.bcpctl.web.conftest import approve_both, basic, request_body, signed_get, signed_post

SUBMIT = "/api/partner/requests"


def _count(ctx, table) -> int:  # type: ignore[no-untyped-def]
    with ctx.state.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_signed_request_is_filed_with_the_decided_columns(client, web_site, web_ctx) -> None:  # type: ignore[no-untyped-def]
    response = signed_post(client, web_site.partner_key, SUBMIT, request_body())
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["partner"] == "koga" and body["status"] == "pending"
    assert body["required_approvals"] == 2 and body["approvals"] == 0
    assert body["fields"][:2] == ["person_ref", "household_ref"] and "machiaza_name" in body["fields"]
    from victim_support.audit import read_entries

    created = [e for e in read_entries(web_ctx.state) if e.action == "request.created"]
    assert [e.subject for e in created] == [body["id"]]
    # requested_by is the partner officer's name as told; the entry binds it to the token's partner
    assert json.loads(created[0].details)["filed_by"] == "partner:koga"


def test_unsigned_badly_signed_and_unknown_partner_requests_are_refused(client, web_site, web_ctx) -> None:  # type: ignore[no-untyped-def]
    from victim_support.store import export_requests

    unsigned = client.post(SUBMIT, json=request_body())
    assert unsigned.status_code == 401
    assert unsigned.headers["content-type"] == "application/problem+json"
    assert "signed" in unsigned.json()["detail"]
    stranger = Ed25519PrivateKey.generate()
    forged = signed_post(client, stranger, SUBMIT, request_body())
    assert forged.status_code == 401 and "does not verify" in forged.json()["detail"]
    unknown = signed_post(client, web_site.partner_key, SUBMIT, request_body(), partner="mito")
    assert unknown.status_code == 401 and "unknown partner" in unknown.json()["detail"]
    unregistered = signed_post(client, web_site.partner_key, SUBMIT, request_body(), partner="tsukuba")
    assert unregistered.status_code == 401 and "no registered verify_key" in unregistered.json()["detail"]
    # a body changed after signing no longer verifies
    from dc.clock import utcnow
    from victim_support.partnersig import sign_headers

    raw = json.dumps(request_body()).encode()
    headers = sign_headers(web_site.partner_key, "koga", "POST", SUBMIT, raw, now=utcnow())
    tampered = raw.replace(b"EVACUEE_IDENTIFICATION", b"AID_DISTRIBUTION\x20\x20\x20\x20\x20\x20")
    changed = client.post(SUBMIT, content=tampered, headers={**headers, "Content-Type": "application/json"})
    assert changed.status_code == 401
    # a token may read status but never file a request
    token = client.post("/api/operator/partners/koga/tokens", json={}, headers=basic("ops")).json()["token"]
    by_token = client.post(SUBMIT, json=request_body(), headers={"Authorization": f"Bearer {token}"})
    assert by_token.status_code == 401
    assert _count(web_ctx, export_requests) == 0


def test_replayed_and_stale_signatures_are_refused(client, web_site) -> None:  # type: ignore[no-untyped-def]
    from dc.clock import utcnow
    from victim_support.partnersig import sign_headers

    raw = json.dumps(request_body()).encode()
    headers = {**sign_headers(web_site.partner_key, "koga", "POST", SUBMIT, raw, now=utcnow())}
    headers["Content-Type"] = "application/json"
    assert client.post(SUBMIT, content=raw, headers=headers).status_code == 201
    replay = client.post(SUBMIT, content=raw, headers=headers)
    assert replay.status_code == 401 and "replayed" in replay.json()["detail"]
    old = sign_headers(web_site.partner_key, "koga", "POST", SUBMIT, raw, now=utcnow() - timedelta(minutes=10))
    stale = client.post(SUBMIT, content=raw, headers={**old, "Content-Type": "application/json"})
    assert stale.status_code == 401 and "clock" in stale.json()["detail"]


def test_policy_rejection_names_every_reason(client, web_site, web_ctx) -> None:  # type: ignore[no-untyped-def]
    from victim_support.store import export_requests

    body = request_body(fields=["name", "個人番号", "phone"], basis="APPI-69-2-3")
    response = signed_post(client, web_site.partner_key, SUBMIT, body)
    assert response.status_code == 422
    problem = response.json()
    assert problem["detail"].startswith("request rejected: 個人番号 is never exported")
    assert any("phone is not allowed under APPI-69-2-3" in r for r in problem["reasons"])
    assert _count(web_ctx, export_requests) == 0


def test_strict_validation_gives_clear_4xx(client, web_site) -> None:  # type: ignore[no-untyped-def]
    extra = signed_post(client, web_site.partner_key, SUBMIT, {**request_body(), "partner": "tsukuba"})
    assert extra.status_code == 422 and extra.json()["errors"][0]["field"] == "partner"
    basis = signed_post(client, web_site.partner_key, SUBMIT, request_body(basis="ANYTHING"))
    assert basis.status_code == 422 and basis.json()["detail"].startswith("basis:")
    area = signed_post(client, web_site.partner_key, SUBMIT, request_body(all_areas=False, areas=["霞が関一丁目"]))
    assert area.status_code == 422 and "is not a 町字 of 五霞町" in area.json()["detail"]
    garbage = signed_post(client, web_site.partner_key, SUBMIT, b"{not json")
    assert garbage.status_code == 422


def test_oversize_bodies_are_refused_before_parsing(client, web_site) -> None:  # type: ignore[no-untyped-def]
    big = request_body(disaster_id="x" * 100, areas=["y" * 50] * 2000)
    response = signed_post(client, web_site.partner_key, SUBMIT, big)
    assert response.status_code == 413
    assert "exceeds 65536 bytes" in response.json()["detail"]

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(100):
            yield b"x" * 1024

    chunked = client.post(SUBMIT, content=chunks(), headers={"Content-Type": "application/json"})
    assert chunked.status_code == 413


def test_a_partner_sees_only_its_own_requests(client, web_site) -> None:  # type: ignore[no-untyped-def]
    request_id = signed_post(client, web_site.partner_key, SUBMIT, request_body()).json()["id"]
    mine = signed_get(client, web_site.partner_key, f"/api/partner/requests/{request_id}")
    assert mine.status_code == 200 and mine.json()["id"] == request_id
    listing = signed_get(client, web_site.partner_key, "/api/partner/requests")
    assert [r["id"] for r in listing.json()] == [request_id]
    tsukuba = client.post("/api/operator/partners/tsukuba/tokens", json={}, headers=basic("ops")).json()["token"]
    other = client.get(f"/api/partner/requests/{request_id}", headers={"Authorization": f"Bearer {tsukuba}"})
    assert other.status_code == 404
    assert client.get("/api/partner/requests", headers={"Authorization": f"Bearer {tsukuba}"}).json() == []
    bad_token = client.get("/api/partner/requests", headers={"Authorization": "Bearer bcpt_nope_nope"})
    assert bad_token.status_code == 401


def test_download_only_after_approval_then_ciphertext_that_the_partner_opens(
    client, web_site, web_ctx, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from victim_support.bundle import open_bundle
    from victim_support.signing import load_verify_key

    request_id = signed_post(client, web_site.partner_key, SUBMIT, request_body()).json()["id"]
    path = f"/api/partner/requests/{request_id}/bundle"
    early = signed_get(client, web_site.partner_key, path)
    assert early.status_code == 409 and "pending (0 of 2 approvals)" in early.json()["detail"]
    approve_both(client, request_id)
    response = signed_get(client, web_site.partner_key, path)
    assert response.status_code == 200 and response.headers["content-type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(response.content)) as tar:
        names = sorted(Path(m.name).name for m in tar.getmembers())
        assert names == ["envelope.json", "envelope.json.sig", "payload.tar.age"]
        tar.extractall(tmp_path / "received", filter="data")
    # no plaintext resident data: the payload is age ciphertext, the envelope holds none
    bundle = next((tmp_path / "received").iterdir())
    assert (bundle / "payload.tar.age").read_bytes().startswith(b"age-encryption.org/v1\n")
    assert (
        "五霞町" in (bundle / "envelope.json").read_text() and "persons" not in (bundle / "envelope.json").read_text()
    )
    opened = open_bundle(
        bundle, web_site.partner_identity, load_verify_key(web_site.tenant_verify_key), tmp_path / "out", web_ctx.now()
    )
    assert opened.manifest["counts"]["rows"] > 100
    header = (tmp_path / "out" / "persons.csv").read_text().splitlines()[0]
    assert "個人番号" not in header and "住民票コード" not in header and header.startswith("個人参照")
    # a second download serves the same bundle (built once) and is audited again
    again = signed_get(client, web_site.partner_key, path)
    assert again.content == response.content
    from victim_support.audit import read_entries

    actions = [e.action for e in read_entries(web_ctx.state) if e.subject == request_id]
    assert actions.count("bundle.built") == 1 and actions.count("bundle.downloaded") == 2


def test_deletion_is_confirmed_once_after_download_and_removes_the_server_copy(client, web_site, web_ctx) -> None:  # type: ignore[no-untyped-def]
    request_id = signed_post(client, web_site.partner_key, SUBMIT, request_body()).json()["id"]
    deletion = f"/api/partner/requests/{request_id}/deletion"
    early = signed_post(client, web_site.partner_key, deletion, {"deleted_by": "koga-sato"})
    assert early.status_code == 409 and "never downloaded" in early.json()["detail"]
    approve_both(client, request_id)
    assert signed_get(client, web_site.partner_key, f"/api/partner/requests/{request_id}/bundle").status_code == 200
    assert any(web_ctx.bundle_root.joinpath(request_id).iterdir())
    confirmed = signed_post(client, web_site.partner_key, deletion, {"deleted_by": "koga-sato", "note": "shredded"})
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["delivery"]["deleted_by"] == "koga-sato"
    assert not web_ctx.bundle_root.joinpath(request_id).exists()
    from victim_support.audit import read_entries

    (entry,) = [e for e in read_entries(web_ctx.state) if e.action == "bundle.deletion_confirmed"]
    details = json.loads(entry.details)
    assert entry.actor == "partner:koga" and entry.subject == request_id
    # the command line's signed statement records the same (tests/victim_support/test_deliveries.py)
    assert set(details) == {"deleted_by", "note", "expires_at", "before_expiry", "via"}
    assert (details["note"], details["via"]) == ("shredded", "signature")
    twice = signed_post(client, web_site.partner_key, deletion, {"deleted_by": "koga-sato"})
    assert twice.status_code == 409
    gone = signed_get(client, web_site.partner_key, f"/api/partner/requests/{request_id}/bundle")
    assert gone.status_code == 410


def test_expired_bundles_are_not_served(client, web_site, web_ctx) -> None:  # type: ignore[no-untyped-def]
    request_id = signed_post(client, web_site.partner_key, SUBMIT, request_body(retention_days=1)).json()["id"]
    approve_both(client, request_id)
    assert signed_get(client, web_site.partner_key, f"/api/partner/requests/{request_id}/bundle").status_code == 200
    later = web_ctx.now() + timedelta(days=2)
    web_ctx.clock = lambda: later
    from victim_support.partnersig import sign_headers

    path = f"/api/partner/requests/{request_id}/bundle"
    expired = client.get(path, headers=sign_headers(web_site.partner_key, "koga", "GET", path, b"", now=later))
    assert expired.status_code == 410 and "expired" in expired.json()["detail"]


def test_partner_requests_are_rate_limited(client, web_site, web_ctx) -> None:  # type: ignore[no-untyped-def]
    from bcpctl.web.ratelimit import RateLimiter

    web_ctx.partner_limiter = RateLimiter(3)
    statuses = [signed_get(client, web_site.partner_key, "/api/partner/requests").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    limited = signed_get(client, web_site.partner_key, "/api/partner/requests")
    assert int(limited.headers["retry-after"]) >= 1


def test_catalog_lists_bases_and_the_tenants_machiaza(client, web_site) -> None:  # type: ignore[no-untyped-def]
    catalog = signed_get(client, web_site.partner_key, "/api/partner/catalog").json()
    assert {b["code"] for b in catalog["bases"]} == {"DMA-90-4-1-3", "DMA-49-11-3", "APPI-69-2-3"}
    goka = next(t for t in catalog["tenants"] if t["id"] == "goka")
    assert len(goka["machiaza"]) > 5 and all(len(m["id"]) == 7 for m in goka["machiaza"])
    assert any(n["key"] == "kojin_bango" for n in catalog["never_exported"])
