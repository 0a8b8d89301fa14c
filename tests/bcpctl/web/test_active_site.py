"""The dashboard after a failover: a banner with the active site and since when, red "unprotected"."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from dc.clock import JST, utcnow
from failover.records import finish_run, start_run
from tests.bcpctl.web.conftest import PASSWORDS, basic


def _record_failover(state: Any) -> Any:
    """A passed failover to the offsite, as execute_failover records it (the restore itself is tested in failover/)."""
    declared = utcnow() - timedelta(minutes=30)
    start_run(
        state, "20261128T0612Z-ab12cd34", kind="failover", mode="execute", consortium="x", site="primary",
        declared_at=declared, deadline=None, target_site="offsite",
    )  # fmt: skip
    finish_run(state, "20261128T0612Z-ab12cd34", status="passed", error=None, document={})
    return declared


def test_the_dashboard_shows_where_production_runs_and_that_nothing_protects_it(client: Any, web_ctx: Any) -> None:
    client.post("/login", data={"name": "ops", "password": PASSWORDS["ops"]})
    assert 'id="active-site"' not in client.get("/dashboard").text
    before = client.get("/api/operator/status", headers=basic("audit")).json()
    assert before["active"]["site"] == "primary" and before["active"]["failed_over"] is False

    _record_failover(web_ctx.state)
    page = client.get("/dashboard").text
    banner = page.split('id="active-site"', 1)[1].split("</p>", 1)[0]
    assert "稼働サイト / active site" in banner and "(offsite)" in banner and "20261128T0612Z-ab12cd34" in banner
    assert " JST から / since" in banner and "UNPROTECTED" in banner and "→ primary" in banner
    status = client.get("/api/operator/status", headers=basic("audit")).json()
    active = status["active"]
    assert active["failed_over"] is True and active["site"] == "offsite" and active["protected"] is False
    assert active["since"].endswith("+00:00") and active["second_copy"] == ["primary"]
    system = status["tenants"][0]["systems"][0]
    # The offsite's own fresh replica is where production runs now: it protects nothing.
    criteria = {c["name"]: c for c in system["light"]["criteria"]}
    assert criteria["second_copy"]["level"] == "red" and "unprotected" in criteria["second_copy"]["text"]
    assert system["light"]["level"] == "red"
    assert f"{utcnow().astimezone(JST):%Y-%m-%d}" in banner
