"""The operator API: roles, the two-person rule, status, drills, audit, tokens, CSRF and proxy auth."""

from __future__ import annotations

import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.bcpctl.web.conftest import basic, proof, request_body, signed_post


def _request(client, web_site, **overrides) -> str:  # type: ignore[no-untyped-def]
    response = signed_post(client, web_site.partner_key, "/api/partner/requests", request_body(**overrides))
    assert response.status_code == 201, response.text
    return response.json()["id"]  # type: ignore[no-any-return]


def test_wrong_password_and_missing_login_are_refused(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/api/operator/requests").status_code == 401
    wrong = client.get("/api/operator/requests", headers=basic("ops", "not-the-password"))
    assert wrong.status_code == 401 and wrong.json()["detail"] == "unknown account or wrong password"
    assert "Basic" not in wrong.headers.get("www-authenticate", "")  # browsers must never cache Basic credentials
    assert client.get("/api/operator/requests", headers=basic("nobody", "whatever-password")).status_code == 401
    assert client.get("/api/operator/whoami", headers=basic("ops")).json() == {
        "name": "ops",
        "roles": ["operator"],
        "via": "password",
    }


@pytest.mark.parametrize(
    ("who", "path", "method", "body"),
    [
        ("ops", "/api/operator/requests/REQ/approve", "post", {}),
        ("audit", "/api/operator/requests/REQ/deny", "post", {"reason": "no"}),
        ("goka-suzuki", "/api/operator/drills", "post", {"mode": "readiness"}),
        ("audit", "/api/operator/partners/koga/tokens", "post", {}),
        ("ops", "/api/operator/audit", "get", None),
        ("goka-suzuki", "/api/operator/audit", "get", None),
    ],
)
def test_wrong_roles_are_forbidden(client, web_site, web_ctx, who, path, method, body) -> None:  # type: ignore[no-untyped-def]
    from victim_support.audit import read_entries

    request_id = _request(client, web_site)
    before = len(read_entries(web_ctx.state))
    response = client.request(method, path.replace("REQ", request_id), json=body, headers=basic(who))
    assert response.status_code == 403, response.text
    assert "needs the role" in response.json()["detail"]
    assert len(read_entries(web_ctx.state)) == before  # nothing changed, nothing audited


def test_two_person_rule(client, web_site, web_ctx) -> None:  # type: ignore[no-untyped-def]
    request_id = _request(client, web_site)
    approve = f"/api/operator/requests/{request_id}/approve"
    first = client.post(approve, json=proof("goka-suzuki"), headers=basic("goka-suzuki"))
    assert first.status_code == 200 and first.json()["status"] == "pending" and first.json()["approvals"] == 1
    same = client.post(approve, json=proof("goka-suzuki"), headers=basic("goka-suzuki"))
    assert same.status_code == 409 and "already approved" in same.json()["detail"]
    stranger = client.post(approve, json={}, headers=basic("koga-yamada"))
    assert stranger.status_code == 403 and "not a configured approver for goka" in stranger.json()["detail"]
    alternate = client.post(approve, json=proof("pref-bosai"), headers=basic("pref-bosai"))
    assert alternate.status_code == 409 and "alternate approver must give" in alternate.json()["detail"]
    second = client.post(approve, json=proof("goka-tanaka", reason=""), headers=basic("goka-tanaka"))
    assert second.status_code == 200 and second.json()["status"] == "approved"
    assert [a["approver"] for a in second.json()["approved_by"]] == ["goka-suzuki", "goka-tanaka"]
    late = client.post(
        f"/api/operator/requests/{request_id}/deny", json=proof("pref-bosai", reason="x"), headers=basic("pref-bosai")
    )
    assert late.status_code == 409
    from victim_support.audit import read_entries, verify_entries

    entries = read_entries(web_ctx.state)
    assert [e.actor for e in entries if e.action == "request.approved"] == ["goka-suzuki", "goka-tanaka"]
    assert verify_entries(entries).ok


def test_deny_needs_a_reason_and_is_final(client, web_site) -> None:  # type: ignore[no-untyped-def]
    request_id = _request(client, web_site)
    deny = f"/api/operator/requests/{request_id}/deny"
    assert client.post(deny, json={}, headers=basic("goka-suzuki")).status_code == 422
    assert client.post(deny, json={"reason": ""}, headers=basic("goka-suzuki")).status_code == 422
    denied = client.post(deny, json=proof("goka-suzuki", reason="scope too wide"), headers=basic("goka-suzuki"))
    assert denied.status_code == 200 and denied.json()["status"] == "denied"
    seen = client.get(f"/api/partner/requests/{request_id}", headers=_partner_token(client, "koga"))
    assert seen.json()["denial_reason"] == "scope too wide"
    again = client.post(deny.replace("deny", "approve"), json=proof("goka-tanaka"), headers=basic("goka-tanaka"))
    assert again.status_code == 409


def _partner_token(client, partner: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    token = client.post(f"/api/operator/partners/{partner}/tokens", json={"label": "t"}, headers=basic("ops"))
    assert token.status_code == 201
    return {"Authorization": f"Bearer {token.json()['token']}"}


def test_listing_and_unknown_requests(client, web_site) -> None:  # type: ignore[no-untyped-def]
    request_id = _request(client, web_site)
    listed = client.get("/api/operator/requests?status=pending", headers=basic("audit")).json()
    assert [r["id"] for r in listed] == [request_id]
    assert client.get("/api/operator/requests?status=approved", headers=basic("audit")).json() == []
    assert client.get("/api/operator/requests?status=bogus", headers=basic("audit")).status_code == 422
    assert client.get("/api/operator/requests/exp-nope", headers=basic("audit")).status_code == 404
    assert (
        client.post("/api/operator/requests/exp-nope/approve", json={}, headers=basic("goka-suzuki")).status_code == 404
    )


def test_status_reports_lights_lag_and_reasons(client) -> None:  # type: ignore[no-untyped-def]
    status = client.get("/api/operator/status", headers=basic("audit")).json()
    system = status["tenants"][0]["systems"][0]
    assert system["id"] == "goka-juki"
    assert [r["site"] for r in system["replication"]] == ["offsite"]
    assert system["replication"][0]["lag_seconds"] == 0.0
    criteria = {c["name"]: c["level"] for c in system["light"]["criteria"]}
    assert criteria == {"offsite": "green", "drill": "red", "rto": "yellow"}
    assert system["light"]["level"] == "red" and status["counts"] == {"green": 0, "yellow": 0, "red": 1}


def test_drill_started_from_the_api_runs_in_the_background_and_is_recorded(client, web_ctx) -> None:  # type: ignore[no-untyped-def]
    started = client.post("/api/operator/drills", json={"mode": "isolated"}, headers=basic("ops"))
    assert started.status_code == 202, started.text
    job = started.json()
    again = client.post("/api/operator/drills", json={"mode": "isolated"}, headers=basic("ops"))
    assert again.status_code in (202, 409)  # 409 while the first still runs
    web_ctx.jobs.wait(120)
    deadline = time.monotonic() + 60
    while (found := client.get(f"/api/operator/drills/jobs/{job['id']}", headers=basic("ops")).json())[
        "status"
    ] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert found["status"] == "passed", found
    # One record: the job is the drill's run, as the command line and the scheduler record theirs.
    from failover.records import list_runs

    (run,) = [r for r in list_runs(web_ctx.state, kind="drill") if r.id == job["id"]]
    assert found["run_id"] == job["id"] and (run.status, run.operator, run.mode) == ("passed", "ops", "isolated")
    assert [j["id"] for j in client.get("/api/operator/drills", headers=basic("ops")).json()["jobs"]] == [job["id"]]
    for key in ("requested_at", "finished_at"):
        assert datetime.fromisoformat(found[key]).utcoffset() == timedelta(0), (key, found[key])
    report = client.get(f"/api/operator/drills/{found['run_id']}/report", headers=basic("audit"))
    assert report.status_code == 200 and "goka-juki" in report.text
    assert "style-src 'unsafe-inline'" in report.headers["content-security-policy"]
    as_json = client.get(f"/api/operator/drills/{found['run_id']}/report?format=json", headers=basic("audit")).json()
    assert as_json["status"] == "passed"
    system = client.get("/api/operator/status", headers=basic("ops")).json()["tenants"][0]["systems"][0]
    assert system["light"]["level"] == "green", system["light"]
    audit = client.get("/api/operator/audit", headers=basic("audit")).json()
    actions = [(e["action"], e["actor"], e["subject"]) for e in audit["entries"]]
    assert ("drill.requested", "ops", job["id"]) in actions and ("drill.finished", "ops", job["id"]) in actions
    assert audit["chain"]["ok"]


def test_a_drill_that_fails_ends_its_one_record_failed(client, web_ctx, web_site) -> None:  # type: ignore[no-untyped-def]
    shutil.rmtree(web_site.root / "offsite")  # the readiness drill cannot open the offsite repository
    started = client.post("/api/operator/drills", json={"mode": "readiness", "tenant": "goka"}, headers=basic("ops"))
    assert started.status_code == 202, started.text
    job = started.json()
    assert (job["status"], job["tenant"], job["requested_by"]) == ("running", "goka", "ops")  # recorded at once
    web_ctx.jobs.wait(120)
    found = client.get(f"/api/operator/drills/jobs/{job['id']}", headers=basic("ops")).json()
    assert found["status"] == "failed" and found["finished_at"], found
    from failover.records import get_run

    run = get_run(web_ctx.state, job["id"])
    assert run is not None and (run.status, run.tenant) == ("failed", "goka") and run.error


def test_a_drill_whose_process_died_reads_as_killed(client, web_ctx) -> None:  # type: ignore[no-untyped-def]
    from failover.records import start_run

    gone = subprocess.Popen(["true"])
    gone.wait()
    now = datetime.now(UTC)
    start_run(web_ctx.state, "20261129T131840Z-deadbeef", kind="drill", mode="isolated", consortium="test",
              site="offsite", declared_at=now, deadline=None, operator="ops")  # fmt: skip
    from sqlalchemy import update

    from failover.records import drill_runs

    with web_ctx.state.begin() as conn:  # as if another process, now gone, had started it
        conn.execute(update(drill_runs).values(pid=gone.pid, pid_start=None))
    found = client.get("/api/operator/drills/jobs/20261129T131840Z-deadbeef", headers=basic("ops"))
    assert found.status_code == 200 and found.json()["status"] == "killed"
    assert client.get("/api/operator/drills/jobs/no-such-run", headers=basic("ops")).status_code == 404


def test_drill_modes_needing_keys_stay_on_the_command_line(client) -> None:  # type: ignore[no-untyped-def]
    assert client.post("/api/operator/drills", json={"mode": "staff-loss"}, headers=basic("ops")).status_code == 422
    unknown = client.post("/api/operator/drills", json={"tenant": "mito"}, headers=basic("ops"))
    assert unknown.status_code == 422


def test_audit_log_pages_and_verifies(client, web_site) -> None:  # type: ignore[no-untyped-def]
    _request(client, web_site)
    audit = client.get("/api/operator/audit?after=0&limit=2", headers=basic("audit")).json()
    assert audit["chain"]["ok"] and len(audit["entries"]) == 2
    assert audit["entries"][0]["action"] == "account.created"
    assert client.get("/api/operator/audit?limit=0", headers=basic("audit")).status_code == 422


def test_tokens_are_issued_once_stored_hashed_and_revocable(client, web_ctx) -> None:  # type: ignore[no-untyped-def]
    issued = client.post("/api/operator/partners/koga/tokens", json={"label": "shelter tablet"}, headers=basic("ops"))
    assert issued.status_code == 201
    secret = issued.json()["token"]
    from sqlalchemy import select

    from victim_support.tokens import partner_tokens

    with web_ctx.state.connect() as conn:
        stored = [tuple(row) for row in conn.execute(select(partner_tokens))]
    assert secret not in repr(stored)
    listed = client.get("/api/operator/partners/tokens", headers=basic("ops")).json()
    assert [t["label"] for t in listed] == ["shelter tablet"] and "token" not in listed[0]
    auth = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/partner/requests", headers=auth).status_code == 200
    revoked = client.delete(f"/api/operator/partners/tokens/{issued.json()['id']}", headers=basic("ops"))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert client.get("/api/partner/requests", headers=auth).status_code == 401
    assert client.post("/api/operator/partners/mito/tokens", json={}, headers=basic("ops")).status_code == 404


def test_session_state_changes_need_the_csrf_token(client, web_site) -> None:  # type: ignore[no-untyped-def]
    request_id = _request(client, web_site)
    page = client.get("/login")
    assert page.status_code == 200
    login = client.post(
        "/login", data={"name": "goka-suzuki", "password": "suzuki-password-01"}, follow_redirects=False
    )
    assert login.status_code == 303 and login.headers["location"] == "/dashboard"
    cookie = login.headers["set-cookie"]
    assert "__Host-bcp_session=" in cookie and "HttpOnly" in cookie and "Secure" in cookie
    assert "samesite=strict" in cookie.lower()
    approve = f"/api/operator/requests/{request_id}/approve"
    assert client.get("/api/operator/whoami").json()["via"] == "session"
    no_csrf = client.post(approve, json={})
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.json()["detail"]
    from dc import sessions

    dashboard = client.get("/dashboard")
    csrf = dashboard.text.split('name="csrf" value="')[1].split('"')[0]
    cross = client.post(approve, json={}, headers={"X-CSRF-Token": csrf, "Origin": "https://evil.invalid"})
    assert cross.status_code == 403
    ok = client.post(approve, json=proof("goka-suzuki"), headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200 and ok.json()["approvals"] == 1
    del sessions


def test_reverse_proxy_header_only_from_trusted_peers(web_site) -> None:  # type: ignore[no-untyped-def]
    import yaml
    from fastapi.testclient import TestClient

    from bcpctl.web.app import create_app
    from bcpctl.web.context import WebContext

    doc = yaml.safe_load(web_site.config_path.read_text())
    doc["web"]["proxy_auth"] = {"header": "X-Remote-User", "trusted": ["127.0.0.1/32"]}
    web_site.config_path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    ctx = WebContext.load(web_site.config_path)
    trusted = TestClient(create_app(ctx), base_url="https://testserver", client=("127.0.0.1", 50000))
    untrusted = TestClient(create_app(ctx), base_url="https://testserver", client=("192.0.2.7", 50000))
    assert trusted.get("/api/operator/whoami", headers={"X-Remote-User": "audit"}).json()["via"] == "proxy"
    assert trusted.get("/api/operator/whoami", headers={"X-Remote-User": "ghost"}).status_code == 401
    assert untrusted.get("/api/operator/whoami", headers={"X-Remote-User": "audit"}).status_code == 401
    ctx.state.dispose()
