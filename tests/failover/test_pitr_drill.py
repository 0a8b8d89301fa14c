"""The point-in-time drill of a postgres-wal system: base backup + WAL replay to the moment
before the event, at the offsite, into a sandbox database, with RTO as base + replay."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import yaml
from sqlalchemy import select

from dc.config import load_config
from dc.state import open_state
from failover.context import RunContext
from failover.drill import run_drill
from failover.drillrequest import DrillRequest
from replication.ledger import Ledger
from replication.sync import replicate
from storage.local import LocalBackend
from tests.backup.walsite import SYSTEM, WalSite, wal_site
from tests.conftest import Cli

pytestmark = pytest.mark.postgres


@pytest.fixture
def site(cli: Cli) -> Iterator[WalSite]:
    with wal_site(cli.env) as made:
        made.sql("CREATE TABLE juki (id serial PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())")
        raw = yaml.safe_load(made.config.read_text(encoding="utf-8"))
        raw["sites"]["offsite"] = {
            "prefecture": "北海道", "role": "offsite", "repository": str(made.base / "offsite"),
            "drill_dsn": made.cluster.dsn("postgres"), "drill_dir": str(made.base / "drill"),
        }  # fmt: skip
        made.config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
        yield made


def _rows(site: WalSite, seconds: float) -> list[tuple[int, datetime]]:
    rows = []
    deadline = time.monotonic() + seconds
    with psycopg.connect(site.cluster.dsn(), autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("INSERT INTO juki DEFAULT VALUES RETURNING id, at").fetchone()
            assert row is not None
            rows.append((int(row[0]), row[1]))
            time.sleep(0.02)
    return rows


def test_point_in_time_drill_replays_wal_to_just_before_the_event(site: WalSite) -> None:
    cli = Cli(site.relay.env)
    assert cli("backup", "run", "--config", str(site.config)).returncode == 0
    rows = _rows(site, 3)
    name = str(site.sql("SELECT pg_walfile_name(pg_switch_wal())")[0][0])
    deadline = time.monotonic() + 60
    while (site.sql("SELECT last_archived_wal FROM pg_stat_archiver")[0][0] or "") < name:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    event = rows[len(rows) // 2][1] + timedelta(milliseconds=5)
    ledger = Ledger(open_state(f"sqlite:///{site.base / 'ledger.db'}", create=True))
    assert replicate(LocalBackend(site.repo), LocalBackend(site.base / "offsite", create=True), ledger).ok
    config, resolved = load_config(site.config)
    ctx = RunContext.create(config, resolved)
    ready = run_drill(ctx, DrillRequest(mode="readiness", systems=(SYSTEM,)), handle_signals=False)
    checks = [c for s in [ready, *ready.systems] for c in getattr(s, "checks", [])]
    assert any(c.name == "drill server reachable" and c.ok for c in checks), checks
    result = run_drill(ctx, DrillRequest(mode="point-in-time", systems=(SYSTEM,), before=event), handle_signals=False)
    juki = result.systems[0]
    assert result.status == "passed", result.verdict()
    wanted = sum(1 for _, at in rows if at <= event)
    assert juki.tables["public.juki"] == wanted
    assert juki.steps["base"] > 0 and juki.steps["replay"] > 0
    assert juki.snapshot_time is not None and timedelta(0) <= event - juki.snapshot_time < timedelta(seconds=1)
    assert juki.rpo_seconds is not None and juki.rpo_seconds < 1


def _wal_disaster(site: WalSite) -> tuple[RunContext, list[tuple[int, datetime]], list[tuple[int, datetime]]]:
    """The offsite holds the primary's WAL up to a point; the primary commits on (``lost``) and its
    pg_wal survives the disaster. Returns the run context and the rows before and after."""
    cli = Cli(site.relay.env)
    assert cli("backup", "run", "--config", str(site.config)).returncode == 0
    rows = _rows(site, 1)
    name = str(site.sql("SELECT pg_walfile_name(pg_switch_wal())")[0][0])
    deadline = time.monotonic() + 60
    while (site.sql("SELECT last_archived_wal FROM pg_stat_archiver")[0][0] or "") < name:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    ledger = Ledger(open_state(f"sqlite:///{site.base / 'ledger.db'}", create=True))
    assert replicate(LocalBackend(site.repo), LocalBackend(site.base / "offsite", create=True), ledger).ok
    # the offsite holds nothing newer; the primary commits on and its pg_wal survives the disaster
    site.sql("ALTER SYSTEM SET archive_command = 'false'")
    site.sql("SELECT pg_reload_conf()")
    lost = _rows(site, 0.5)
    shutil.copytree(site.cluster.datadir / "pg_wal", site.base / "survivors")
    raw = yaml.safe_load(site.config.read_text(encoding="utf-8"))
    raw["systems"][SYSTEM]["source"]["surviving_wal"] = [str(site.base / "survivors")]
    raw["systems"][SYSTEM]["reentry"] = {"public.juki": {"business": "住民基本台帳 異動", "fields": ["id"]}}
    raw["systems"][SYSTEM]["restore_dsn"] = site.cluster.dsn("juki_dr")
    raw["drills"] = {"report_dir": str(site.base / "reports")}
    site.config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    config, resolved = load_config(site.config)
    return RunContext.create(config, resolved), rows, lost


def test_failover_recovers_a_wal_system_to_the_newest_wal_the_offsite_holds(site: WalSite) -> None:
    from failover.failover import FailoverRequest, execute_failover
    from tests.failover.test_failover import RecordingHooks

    ctx, rows, lost = _wal_disaster(site)
    over = execute_failover(
        ctx, FailoverRequest("offsite", confirmed=True), hooks=RecordingHooks(), handle_signals=False
    )
    juki = over.systems[0]
    assert juki.status == "passed", over.verdict()
    assert site.sql("SELECT count(*) FROM juki", database="juki_dr") == [(len(rows),)]
    # what was lost: the last transaction recovered, measured against the declared disaster
    assert juki.snapshot_time is not None and juki.snapshot_time >= rows[-1][1]
    assert juki.steps["replay"] > 0
    ja = Path(over.reports["ja:goka"]).read_text(encoding="utf-8")
    assert "最終トランザクション" in ja and "失われた処理" in ja, ja
    # the rows committed after the offsite's last WAL, from the surviving pg_wal: each to type again
    listed = {int(r["fields"]["id"]) for r in over.lost[SYSTEM]["rows"]}
    assert listed == {i for i, _ in lost} and all(f"id={i}" in ja for i, _ in lost)
    assert {r["town"] for r in over.lost[SYSTEM]["rows"]} == {"五霞町"}
    worklist = Path(over.reports[f"worklist:{SYSTEM}"]).read_text(encoding="utf-8-sig")
    assert len(worklist.splitlines()) == len(lost) + 1
    # the listing's scratch clusters were the run's sandboxes, removed and verified gone; the
    # reports that name residents are the operators' account's alone
    from failover.records import drill_resources

    with ctx.state.connect() as conn:
        made = conn.execute(select(drill_resources).where(drill_resources.c.run_id == over.id)).fetchall()
    assert [(r.kind, Path(r.name).name.startswith("bcpdrill-lost-"), r.state) for r in made] == [
        ("directory", True, "removed")
    ]
    assert not Path(made[0].name).exists()
    assert Path(over.reports["json"]).parent.stat().st_mode & 0o077 == 0


def test_a_failover_may_leave_the_lost_work_for_later_and_names_the_command(site: WalSite) -> None:
    from failover.failover import FailoverRequest, execute_failover
    from failover.records import drill_resources
    from tests.failover.test_failover import RecordingHooks

    ctx, _rows_before, _lost = _wal_disaster(site)
    request = FailoverRequest("offsite", confirmed=True, lost_work="later")
    over = execute_failover(ctx, request, hooks=RecordingHooks(), handle_signals=False)
    assert over.systems[0].status == "passed", over.verdict()
    deferred = over.lost[SYSTEM]
    assert deferred["rows"] == [] and deferred["deferred"].startswith(f"bcpctl failover lost {SYSTEM} --site offsite")
    ja = Path(over.reports["ja:goka"]).read_text(encoding="utf-8")
    assert "後回し" in ja and deferred["deferred"] in ja
    with ctx.state.connect() as conn:  # no scratch cluster was made
        assert conn.execute(select(drill_resources).where(drill_resources.c.run_id == over.id)).fetchall() == []


def _tablespaces(site: WalSite) -> dict[Path, set[str]]:
    """Two tablespaces outside the data directory holding ``juki`` and a second table, before any
    base backup; returns what each directory holds (autovacuum off: only a restore writes there)."""
    from tests.backup.test_pitr_tablespace import _postgres_dir

    locations = {}
    for name in ("juki_space", "zei_space"):
        locations[name] = _postgres_dir(site.base / name, site.cluster.owner)
        site.sql(f"CREATE TABLESPACE {name} LOCATION '{locations[name]}'")
    site.sql("ALTER TABLE juki SET TABLESPACE juki_space, SET (autovacuum_enabled = false)")
    site.sql("CREATE TABLE zei (id int) WITH (autovacuum_enabled = false) TABLESPACE zei_space")
    site.sql("INSERT INTO zei SELECT generate_series(1, 300)")
    return {location: set() for location in locations.values()}


def _held(locations: dict[Path, set[str]]) -> dict[Path, set[str]]:
    return {location: {str(p.relative_to(location)) for p in location.rglob("*")} for location in locations}


def test_point_in_time_drill_and_failover_of_a_cluster_with_tablespaces(site: WalSite) -> None:
    """The drill and failover copy the recovered database into a server that may hold the primary's
    own tablespaces (here: the primary itself): every object lands in its default tablespace."""
    from failover.failover import FailoverRequest, execute_failover
    from tests.failover.test_failover import RecordingHooks

    locations = _tablespaces(site)
    ctx, rows, lost = _wal_disaster(site)
    site.sql("CHECKPOINT")
    before = _held(locations)
    event = rows[len(rows) // 2][1] + timedelta(milliseconds=5)
    drill = run_drill(ctx, DrillRequest(mode="point-in-time", systems=(SYSTEM,), before=event), handle_signals=False)
    assert drill.status == "passed", drill.verdict()
    assert drill.systems[0].tables["public.juki"] == sum(1 for _, at in rows if at <= event)
    assert drill.systems[0].tables["public.zei"] == 300
    over = execute_failover(
        ctx, FailoverRequest("offsite", confirmed=True), hooks=RecordingHooks(), handle_signals=False
    )
    assert over.systems[0].status == "passed", over.verdict()
    assert site.sql("SELECT count(*) FROM juki", database="juki_dr") == [(len(rows),)]
    assert site.sql("SELECT count(*) FROM zei", database="juki_dr") == [(300,)]
    assert {int(r["fields"]["id"]) for r in over.lost[SYSTEM]["rows"]} == {i for i, _ in lost}
    site.sql("CHECKPOINT")
    assert _held(locations) == before  # nothing of the drill's or the failover's copy went there
