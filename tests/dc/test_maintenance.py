"""Maintenance mode: stored in the control database, asked through pure functions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from dc.maintenance import hosts_to_skip, in_maintenance, load_maintenance, maintenance_events, set_maintenance
from dc.state import open_state


def test_on_off_is_stored_idempotent_and_audited() -> None:
    engine = open_state()
    t0, t1 = datetime(2026, 4, 1, 9, tzinfo=UTC), datetime(2026, 4, 1, 10, tzinfo=UTC)
    set_maintenance(engine, "hv01", True, reason="disk swap", operator="suzuki", now=t0)
    set_maintenance(engine, "hv01", True, reason="disk swap, RAID rebuild", operator="suzuki", now=t1)
    state = load_maintenance(engine)
    assert list(state) == ["hv01"]
    assert state["hv01"].reason == "disk swap, RAID rebuild"
    assert state["hv01"].since.replace(tzinfo=UTC) == t0  # turning it on again keeps the start
    assert in_maintenance("hv01", state) and not in_maintenance("hv02", state)
    assert hosts_to_skip(["db01", "hv01", "hv02"], state) == ["hv01"]

    set_maintenance(engine, "hv01", False, operator="suzuki")
    set_maintenance(engine, "hv02", False)  # never was: nothing to record
    assert load_maintenance(engine) == {}
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(maintenance_events)).scalar() == 3


def test_cli_maintenance_on_list_off(cli, example_config: Path) -> None:  # type: ignore[no-untyped-def]
    on = cli("dc", "maintenance", "hv01", "on", "--reason", "firmware", "--config", str(example_config), "--json")
    assert on.returncode == 0, on.stderr
    rows = json.loads(on.stdout)["in_maintenance"]
    assert [(r["host"], r["reason"]) for r in rows] == [("hv01", "firmware")]
    listed = cli("dc", "maintenance", "--json")
    assert [r["host"] for r in json.loads(listed.stdout)["in_maintenance"]] == ["hv01"]
    off = cli("dc", "maintenance", "hv01", "off", "--json")
    assert json.loads(off.stdout)["in_maintenance"] == []


def test_cli_unknown_host_is_refused_and_nothing_stored(cli, example_config: Path) -> None:  # type: ignore[no-untyped-def]
    proc = cli("dc", "maintenance", "hv99", "on", "--config", str(example_config))
    assert proc.returncode == 2
    assert proc.stderr.strip() == "bcpctl: error: unknown host 'hv99' (known: hv01, hv02, db01, lb01, dr-hv01, dr-lb01)"
    assert load_maintenance(open_state()) == {}
    missing_state = cli("dc", "maintenance", "hv01")
    assert missing_state.returncode == 2 and "on|off" in missing_state.stderr
