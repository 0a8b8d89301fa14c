"""The control plane on PostgreSQL: two real servers on 127.0.0.1, a streaming standby, failover and failback.

Each site's control database is its own PostgreSQL server, driven by bcpctl through the
``control_server`` commands as an operator's configuration would (``pg_ctl`` as the
``postgres`` account). Control state is written at the primary before the failover, at the
offsite while it is live and at the primary after failback — all through the real ``bcpctl`` —
and every entry must be at both sites at the end, the audit chain verified across both switches.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dc.audit import read_entries, verify_log
from dc.config import load_config
from dc.continuation import PROMOTED
from dc.state import open_state
from failover.control_postgres import PostgresStandby
from failover.control_server import lsn
from failover.errors import FailoverRefused
from failover.failover import FailoverRequest, execute_failover
from failover.lifecycle import RunContext
from tests.conftest import Cli
from tests.failover.sites import Sites, build_sites, enroll, fail_over, ok, ship
from tests.failover.test_control_plane import FencingHooks
from tests.servers.postgres import Cluster, new_cluster

pytestmark = pytest.mark.postgres

#: what a control server needs to stream and, after a failover, to be rewound (pg_rewind)
REWINDABLE = {"fsync": "off", "wal_log_hints": "on", "full_page_writes": "on"}


@pytest.fixture
def pair() -> Iterator[tuple[Cluster, Cluster]]:
    """The primary's control server running with its database; the offsite's an empty directory."""
    primary = new_cluster(settings=REWINDABLE)
    offsite = new_cluster(initdb=False, settings=REWINDABLE)
    try:
        primary.start()
        primary.create_database("bcpctl")
        yield primary, offsite
    finally:
        offsite.remove()
        primary.remove()


def _sites(root: Path, cli: Cli, primary: Cluster, offsite: Cluster) -> Sites:
    return build_sites(
        root,
        cli,
        control={
            name: {"control_db": cluster.dsn("bcpctl"), "control_server": cluster.server_spec()}
            for name, cluster in (("primary", primary), ("offsite", offsite))
        },
    )


def _recovering(cluster: Cluster) -> bool:
    with psycopg.connect(cluster.dsn("bcpctl"), connect_timeout=5) as conn:
        return bool(conn.execute("SELECT pg_is_in_recovery()").fetchone()[0])  # type: ignore[index]


def _enrolled(cluster: Cluster) -> list[str]:
    engine = open_state(cluster.dsn("bcpctl"))
    try:
        return [e.subject for e in read_entries(engine) if e.action == "approver.enrolled"]
    finally:
        engine.dispose()


def _until(check: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


@pytest.mark.parametrize("rebuilt_by", ["failback", "standby-init-at-primary"])
def test_failover_and_failback_between_two_postgres_servers_lose_nothing(
    cli: Cli, tmp_path: Path, pair: tuple[Cluster, Cluster], record_property: Any, rebuilt_by: str
) -> None:
    """``rebuilt_by``: who makes the crashed primary a standby again — the failback itself (one
    controller holds both data directories, as here), or the runbook's step at the primary's
    controller before the failback (two machines)."""
    primary, offsite = pair
    sites = _sites(tmp_path / "c", cli, primary, offsite)
    config_path = str(sites.config_path)
    at_primary, at_offsite = {"BCPCTL_SITE": "primary"}, sites.offsite_env()

    # -- the standby, set up by bcpctl from an empty directory; a second run only reconfigures it
    built = ok(cli("control", "standby", "init", "--config", config_path, "--site", "offsite", "--json"))
    assert (built["method"], built["slot"], built["slot_created"], built["streaming"]) == (
        "pg_basebackup",
        "bcpctl_offsite",
        True,
        True,
    )
    again = ok(cli("control", "standby", "init", "--config", config_path, "--json"))
    assert (again["method"], again["slot_created"], again["streaming"]) == ("reconfigured", False, True)
    assert _recovering(offsite) and not _recovering(primary)

    # -- control state written at the primary before the disaster, and its copy's age
    for name in ("before-1", "before-2"):
        ok(cli(*enroll(sites, name), "--secret-file", str(tmp_path / name), "--generate", env=at_primary))
    shipped = ok(ship(sites, cli, **at_primary))
    assert shipped["kind"] == "postgres-standby" and shipped["problems"] == [], shipped
    assert shipped["newest"]["offsite"]["position"]
    status = ok(cli("control", "status", "--config", config_path, "--json", env=at_primary))
    (copy,) = status["sites"]
    assert status["kind"] == "postgres-standby" and copy["within_rpo"] and copy["age_seconds"] < 60

    from monitoring.metrics import build_registry
    from monitoring.sources import SourceContext

    config, path = load_config(sites.config_path)
    live = open_state(primary.dsn("bcpctl"))
    value = build_registry(SourceContext(live, config)).get_sample_value
    assert value("bcp_control_plane_standby_streaming", {"site": "offsite"}) == 1
    for family in ("bcp_control_plane_copy_age_seconds", "bcp_control_plane_standby_lag_seconds"):
        seconds = value(family, {"site": "offsite"})
        assert seconds is not None and 0 <= seconds < 60, (family, seconds)
    live.dispose()
    before = _enrolled(primary)
    assert before[-2:] == ["before-1", "before-2"]
    _until(lambda: _enrolled(offsite) == before)

    # -- promotion refused while the primary's control database answers and takes writes ...
    refused = fail_over(sites, cli)
    assert refused.returncode == 1, refused.stderr
    assert refused.stderr.startswith("bcpctl: error: ") and refused.stderr.count("\n") == 1, refused.stderr
    assert "the control database of primary" in refused.stderr and "still answers and accepts writes" in refused.stderr
    assert "not fenced" in refused.stderr and "was not promoted" in refused.stderr
    assert _recovering(offsite) and not _recovering(primary), "nothing promoted, the primary still live"
    # ... and when the fence fails (the preflight every control plane shares); nothing promoted either way
    ctx = RunContext.create(config.at_site("offsite"), path)
    with pytest.raises(FailoverRefused, match="primary still answers and is not fenced"):
        request = FailoverRequest("offsite", confirmed=True, at_site="offsite")
        execute_failover(ctx, request, hooks=FencingHooks({"p-db": "failed"}), handle_signals=False)
    assert _recovering(offsite)

    # -- the disaster: the primary's server dies; the failover promotes the standby
    primary.crash()
    over = ok(fail_over(sites, cli))
    control = over["control_plane"]
    assert over["status"] == "passed" and control["source"] == "streamed" and not control["planned"]
    assert control["received_seq"] == len(read_entries_at(offsite)) - 1  # everything before its own entry
    # the RPO: the declared disaster minus the newest transaction the standby replayed (an upper
    # bound — here nothing was lost, asserted below); in the report files as in the JSON
    rpo = control["rpo_seconds"]
    assert rpo is not None and 0 <= rpo < 120
    record_property("control_plane_rpo_seconds", rpo)
    print(f"\nmeasured control-plane RPO at the failover (PostgreSQL standby, {rebuilt_by}): {rpo} s")
    stored = json.loads(Path(over["reports"]["json"]).read_text(encoding="utf-8"))
    assert stored["control_plane"]["rpo_seconds"] == rpo
    assert "control-plane RPO (measured)" in Path(over["reports"]["html"]).read_text(encoding="utf-8")
    assert not _recovering(offsite)
    assert _enrolled(offsite) == before, "every entry written at the primary before the disaster"

    # -- control state written at the offsite while it is live
    ok(cli(*enroll(sites, "during-1"), "--secret-file", str(tmp_path / "during-1"), "--generate", env=at_offsite))
    without_site = cli("failback", "--config", config_path, "--yes")
    assert without_site.returncode == 2 and "--site" in without_site.stderr

    # -- failback: the crashed primary is rewound into a standby, takes the state over, the offsite follows it
    rewound = "control server of primary: standby of offsite (built with pg_rewind"
    if rebuilt_by == "standby-init-at-primary":
        init = ok(
            cli("control", "standby", "init", "--config", config_path, "--site", "primary", "--json", env=at_primary)
        )
        assert (init["source"], init["method"], init["streaming"]) == ("offsite", "pg_rewind", True), init
        rewound = "control server of primary: already streams from offsite"
    back = ok(cli("failback", "--config", config_path, "--yes", "--json", env=at_offsite))
    assert back["status"] == "passed", back
    handed = back["control_plane"]
    assert (handed["site"], handed["from_site"], handed["source"], handed["planned"]) == (
        "primary",
        "offsite",
        "streamed",
        True,
    )
    assert handed["rpo_seconds"] == 0
    notes = back["warnings"]
    assert any(rewound in w for w in notes), notes
    assert not any("is not a standby of primary" in w or "NOT streaming" in w for w in notes), notes
    assert not _recovering(primary)
    _until(lambda: _recovering(offsite))

    # -- control state written at the primary after failback reaches the offsite's standby
    ok(cli(*enroll(sites, "after-1"), "--secret-file", str(tmp_path / "after-1"), "--generate", env=at_primary))
    everything = [*before, "during-1", "after-1"]
    assert _enrolled(primary) == everything
    _until(lambda: _enrolled(offsite) == everything)

    # -- the chain verifies across both switches and states each of them
    engine = open_state(primary.dsn("bcpctl"))
    try:
        entries = read_entries(engine)
        assert verify_log(engine).ok
    finally:
        engine.dispose()
    assert [e.parsed_details()["site"] for e in entries if e.action == PROMOTED] == ["offsite", "primary"]
    report = ok(cli("audit", "verify", "--config", config_path, "--json", env=at_primary))
    assert report["first_bad_seq"] is None and len(report["failovers"]) == 2
    assert report["failovers"][1]["statement"].startswith("offsite handed its control state over to primary")
    home = ok(cli("status", "--config", config_path, "--json", env=at_primary))
    assert home["active_site"] == "primary" and not home["failed_over"]
    assert ok(ship(sites, cli, **at_primary))["problems"] == []


def read_entries_at(cluster: Cluster) -> list[Any]:
    engine = open_state(cluster.dsn("bcpctl"))
    try:
        return read_entries(engine)
    finally:
        engine.dispose()


def test_standby_init_says_what_the_live_server_lacks_and_refuses_another_cluster(
    cli: Cli, tmp_path: Path, pair: tuple[Cluster, Cluster]
) -> None:
    primary, offsite = pair
    lacking = new_cluster(settings={"fsync": "off", "full_page_writes": "off"})
    other = new_cluster(settings=REWINDABLE)
    try:
        lacking.start()
        lacking.create_database("bcpctl")
        config = {
            "primary": {"control_db": lacking.dsn("bcpctl"), "control_server": lacking.server_spec()},
            "offsite": {"control_db": offsite.dsn("bcpctl"), "control_server": offsite.server_spec()},
        }
        sites = build_sites(tmp_path / "lacking", cli, control=config)
        refused = cli("control", "standby", "init", "--config", str(sites.config_path), "--json")
        assert refused.returncode == 1 and refused.stderr.count("\n") == 1
        assert "wal_log_hints = on" in refused.stderr and "full_page_writes = on" in refused.stderr
        assert "nothing was changed" in refused.stderr and not offsite.datadir.exists()

        # a data directory holding another cluster is never overwritten without --replace
        other.start()
        other.create_database("bcpctl")
        config = {
            "primary": {"control_db": primary.dsn("bcpctl"), "control_server": primary.server_spec()},
            "offsite": {"control_db": other.dsn("bcpctl"), "control_server": other.server_spec()},
        }
        sites = build_sites(tmp_path / "other", cli, control=config)
        with psycopg.connect(other.dsn("bcpctl"), autocommit=True) as conn:
            conn.execute("CREATE TABLE precious (x int)")
        kept = cli("control", "standby", "init", "--config", str(sites.config_path), "--json")
        assert kept.returncode == 1 and "accepts writes" in kept.stderr
        subprocess_ok(other.stop_command())
        kept = cli("control", "standby", "init", "--config", str(sites.config_path), "--json")
        assert kept.returncode == 1 and "holds another cluster" in kept.stderr and "--replace" in kept.stderr
        replaced = ok(cli("control", "standby", "init", "--config", str(sites.config_path), "--replace", "--json"))
        assert replaced["method"] == "pg_basebackup" and replaced["streaming"]
        assert "another cluster" in replaced["rewind_skipped"]
        aside = Path(replaced["kept_aside"])
        assert aside.name.startswith("data.before-standby-") and (aside / "PG_VERSION").exists()
    finally:
        other.remove()
        lacking.remove()


def subprocess_ok(command: str) -> None:
    import shlex
    import subprocess

    subprocess.run(shlex.split(command), check=True, stdout=subprocess.DEVNULL)


def test_choosing_the_control_plane_by_what_the_sites_name() -> None:
    from dc.config import parse_config
    from failover.controlplane import plane_kind

    raw: dict[str, Any] = {
        "consortium": "c",
        "sites": {
            "primary": {"prefecture": "茨城県", "repository": "/p"},
            "offsite": {"prefecture": "北海道", "role": "offsite", "repository": "/o"},
        },
        "tenants": {"goka": {"name": "五霞町", "lg_code": "085421", "population": 9376}},
    }
    assert plane_kind(parse_config({**raw, "control_db": "sqlite:////srv/c.db"})) == "sqlite-shipping"
    shared = {**raw, "control_db": "postgresql://bcp@127.0.0.1:5432/bcpctl"}
    assert plane_kind(parse_config(shared)) == "shared"
    raw["sites"]["offsite"]["control_db"] = "postgresql://bcp@127.0.0.2:5432/bcpctl"
    assert plane_kind(parse_config(shared)) == "postgres-standby"
    assert isinstance(PostgresStandby(parse_config(shared), None), PostgresStandby)
    raw["sites"]["offsite"]["control_server"] = {"data_dir": "/d", "start": "'unclosed", "stop": "x"}
    from dc.errors import ConfigError

    with pytest.raises(ConfigError, match=r"sites.offsite.control_server.start: not a command line"):
        parse_config(shared)


def test_wal_positions_compare_as_numbers() -> None:
    assert lsn("0/16B3748") == 0x16B3748
    assert (lsn("1/0") or 0) > (lsn("0/FFFFFFFF") or 0)
    assert lsn(None) is None and lsn("") is None
    assert json.dumps(lsn("16/B374D848")) == str((0x16 << 32) + 0xB374D848)
