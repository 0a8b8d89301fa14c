"""Failback hands the embedded (SQLite) control state home: nothing written at either site is lost.

The primary writes its control state and ships it, then is lost whole (its directory removed,
as the demo's disaster does); the offsite fails over, serves and writes its own state, and
fails back through the real ``bcpctl``. At the primary afterwards every audit entry of both
sites is in its control database, the chain verifies across both switches, ``status`` says the
primary is active, and the offsite's database is kept aside: the next failover promotes what the
primary shipped, not the offsite's old state. A failback killed at any step runs again to the end.
"""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from dc.audit import read_entries, verify_log
from dc.auditentry import AuditEntry
from dc.continuation import PROMOTED
from dc.state import open_state
from tests.conftest import Cli
from tests.failover.sites import Sites, build_sites, enroll, fail_over, lose_the_primary, ok, ship

AT_PRIMARY = {"BCPCTL_SITE": "primary"}


def _entries(database: Path) -> list[AuditEntry]:
    engine = open_state(f"sqlite:///{database}")
    try:
        assert verify_log(engine).ok
        return read_entries(engine)
    finally:
        engine.dispose()


def _enrolled(database: Path) -> list[str]:
    return [e.subject for e in _entries(database) if e.action == "approver.enrolled"]


def _write(sites: Sites, cli: Cli, name: str, env: dict[str, str]) -> None:
    """One audited write of the control state (an approver enrolled) at the site ``env`` names."""
    ok(cli(*enroll(sites, name), "--secret-file", str(sites.root / "officials" / name), "--generate", env=env))


def _fail_back(sites: Sites, cli: Cli, **env: str) -> subprocess.CompletedProcess[str]:
    return cli("failback", "--config", str(sites.config_path), "--site", "offsite", "--yes", "--json",
               env={**sites.offsite_env(), **env})  # fmt: skip


def _status(sites: Sites, cli: Cli, env: dict[str, str]) -> tuple[str, bool]:
    doc = ok(cli("status", "--config", str(sites.config_path), "--json", env=env))
    return doc["active_site"], doc["failed_over"]


def _failed_over(sites: Sites, cli: Cli) -> None:
    """The primary ships its state and is lost whole; the offsite fails over and writes its own."""
    _write(sites, cli, "before-1", AT_PRIMARY)
    assert ok(ship(sites, cli, **AT_PRIMARY))["problems"] == []
    lose_the_primary(sites)
    over = ok(fail_over(sites, cli))
    assert over["status"] == "passed" and over["control_plane"]["source"] == "restored"
    _write(sites, cli, "during-1", sites.offsite_env())


def _assert_home(sites: Sites, cli: Cli, enrolled: list[str]) -> list[AuditEntry]:
    """Everything is in the primary's database, the chain verified across both switches, the primary active."""
    entries = _entries(sites.primary / "control.db")
    assert [e.subject for e in entries if e.action == "approver.enrolled"] == enrolled
    promoted = [e.parsed_details() for e in entries if e.action == PROMOTED]
    assert [(p["site"], p["from_site"]) for p in promoted] == [("offsite", "primary"), ("primary", "offsite")]
    report = ok(cli("audit", "verify", "--config", str(sites.config_path), "--json", env=AT_PRIMARY))
    assert report["ok"] and report["first_bad_seq"] is None and report["head_seq"] == entries[-1].seq
    assert [f["site"] for f in report["failovers"]] == ["offsite", "primary"]
    handed = report["failovers"][1]["statement"]
    assert (
        handed.startswith("offsite handed its control state over to primary")
        and "nothing it wrote is missing" in handed
    )
    assert _status(sites, cli, AT_PRIMARY) == ("primary", False)
    assert not (sites.offsite / "control.db").exists(), "the offsite's database is kept aside, not live"
    return entries


def test_failback_hands_the_sqlite_control_state_home_and_nothing_is_lost(cli: Cli, tmp_path: Path) -> None:
    sites = build_sites(tmp_path / "c", cli)
    _failed_over(sites, cli)
    assert _status(sites, cli, sites.offsite_env()) == ("offsite", True)
    # what runs at the offsite changes too, and must come home with the control state
    live = sites.offsite / "live" / "goka-juki" / "goka-juki.sqlite"
    with sqlite3.connect(live) as conn:
        conn.execute("INSERT INTO residents VALUES (100001, '避難 花子')")
    offsite_chain = _entries(sites.offsite / "control.db")

    back = ok(_fail_back(sites, cli))
    assert back["status"] == "passed", back
    control = back["control_plane"]
    assert (control["site"], control["from_site"], control["source"], control["planned"]) == (
        "primary",
        "offsite",
        "restored",
        True,
    )
    assert control["rpo_seconds"] == 0 and control["received_seq"] == offsite_chain[-1].seq
    entries = _assert_home(sites, cli, ["somu-kacho", "bosai-kacho", "before-1", "during-1"])
    # the offsite's chain, entry for entry, then the hand-over linked to its head
    assert [(e.seq, e.hash) for e in entries[:-1]] == [(e.seq, e.hash) for e in offsite_chain]
    assert entries[-1].action == PROMOTED and entries[-1].prev_hash == offsite_chain[-1].hash
    assert entries[-1].subject == back["id"]
    (aside,) = sites.offsite.glob("control.db.after-handover-*[0-9a-f]")
    assert [(e.seq, e.hash) for e in _entries(aside)] == [(e.seq, e.hash) for e in offsite_chain], "kept, unchanged"
    with sqlite3.connect(sites.primary / "systems" / "goka-juki.sqlite") as conn:
        assert conn.execute("SELECT name FROM residents WHERE atena_no = 100001").fetchone() == ("避難 花子",)

    # The primary goes on writing and shipping; the next failover promotes that, never the offsite's old state.
    _write(sites, cli, "after-1", AT_PRIMARY)
    shipped = ok(ship(sites, cli, **AT_PRIMARY))
    assert shipped["problems"] == [] and shipped["source"] == "primary"
    copy = ok(cli("control", "status", "--config", str(sites.config_path), "--json", env=AT_PRIMARY))
    assert [s["within_rpo"] for s in copy["sites"]] == [True]
    head = _entries(sites.primary / "control.db")[-1]
    lose_the_primary(sites)
    shutil.rmtree(sites.offsite / "live")  # runbook §8 step 2: the offsite's failover targets emptied
    again = ok(fail_over(sites, cli))
    assert again["status"] == "passed" and again["control_plane"]["source"] == "restored"
    assert again["control_plane"]["received_seq"] == head.seq
    assert _enrolled(sites.offsite / "control.db") == ["somu-kacho", "bosai-kacho", "before-1", "during-1", "after-1"]


#: where a failback can die: shipping the systems home (nothing swapped yet), with the last copy of
#: the control state taken but not shipped, with the state at the primary before the run's verdict,
#: and with the verdict recorded at the primary before the offsite's database followed it
KILLS = (
    "replicate.before-manifest",
    "control.copy.after-snapshot",
    "failback.after-handover",
    "failback.before-follow",
)


@pytest.mark.parametrize("point", KILLS)
def test_a_failback_killed_at_any_step_runs_again_and_loses_nothing(cli: Cli, tmp_path: Path, point: str) -> None:
    sites = build_sites(tmp_path / "c", cli)
    _failed_over(sites, cli)
    killed = _fail_back(sites, cli, BCPCTL_FAILPOINTS=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    if point == "failback.before-follow":
        # the primary recorded its verdict: it serves, and what it writes now must survive the rerun
        assert _status(sites, cli, AT_PRIMARY) == ("primary", False)
        late = ["during-1", "after-kill"]
        _write(sites, cli, "after-kill", AT_PRIMARY)
    else:
        # no verdict yet: the offsite still serves with its state, and goes on writing
        assert _status(sites, cli, sites.offsite_env()) == ("offsite", True)
        if (sites.primary / "control.db").exists():
            assert _status(sites, cli, AT_PRIMARY) == ("offsite", True), "the primary does not claim to serve"
        late = ["during-1", "during-2"]
        _write(sites, cli, "during-2", sites.offsite_env())

    again = ok(_fail_back(sites, cli))
    assert again["status"] == "passed", again
    entries = _assert_home(sites, cli, ["somu-kacho", "bosai-kacho", "before-1", *late])
    (handover,) = [e for e in entries if e.action == PROMOTED and e.parsed_details()["site"] == "primary"]
    if point == "failback.before-follow":
        assert any("only that step was run" in w for w in again["warnings"]), again["warnings"]
        assert again["id"] == handover.subject, "the killed run is the one that ended the failover"
    else:
        assert again["id"] == handover.subject and again["id"] != killed_id(killed)


def killed_id(killed: subprocess.CompletedProcess[str]) -> str | None:
    """A SIGKILLed run prints nothing: it has no id of its own to report."""
    return killed.stdout.strip() or None
