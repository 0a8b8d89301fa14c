"""Drill modes against the example consortium on real PostgreSQL: isolated, point-in-time, readiness."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from failover.drill import run_drill
from failover.drillrequest import DrillRequest
from failover.records import list_runs, system_history
from failover.settings import Blackout
from tests.conftest import Cli
from tests.failover.conftest import Built
from tests.servers.sshd import SshServer
from tests.servers.storage import sftp_url

pytestmark = pytest.mark.postgres


def test_isolated_drill_restores_verifies_measures_and_cleans_up(example: Built) -> None:
    before_dbs = set(example.sandbox_databases())
    ctx = example.context()
    result = run_drill(ctx, DrillRequest(mode="isolated"), handle_signals=False)

    assert result.status == "passed", result.verdict()
    assert [s.system for s in result.systems][:3] == ["goka-juki", "hitachiomiya-juki", "kasumigaura-juki"]
    assert [s.group for s in result.systems] == [1, 1, 1, 1, 2, 2, 2, 3]
    for s in result.systems:
        assert s.status == "passed", (s.system, s.error)
        assert s.rto_met and s.rpo_met
        assert 0 < s.rpo_seconds < 600 and 0 < s.rto_seconds < 600  # type: ignore[operator]
        assert set(s.steps) == {"fetch", "decrypt", "restore", "verify"}
        assert s.fetched_bytes > 0
        smoke = next(c for c in s.checks if c.name == "smoke")
        assert smoke.ok
    juki = next(s for s in result.systems if s.system == "hitachiomiya-juki")
    assert juki.tables == {"public.residents": 1501, "public.households": 500}
    names = {c.name for c in juki.checks}
    assert {"tenant reads own sandbox", "probe login refused", "tenant naka's login refused"} <= names
    gaiji = next(s for s in result.systems if s.system == "kasumigaura-gaiji")
    assert gaiji.files == 40 and any(c.name == "tenant directory private" and c.ok for c in gaiji.checks)

    # Everything the drill created is gone, and the run says so.
    assert result.cleanup is not None and result.cleanup.ok
    # five databases, roles of the three tenants with PostgreSQL systems and the probe, one directory
    assert len(result.cleanup.removed) == 5 + 4 + 1
    assert set(example.sandbox_databases()) == before_dbs
    assert not [r for r in example.sandbox_roles() if result.id.split("-")[-1] in r]
    assert example.drill_dir_entries() == []

    # Recorded, reported, and the trend is queryable.
    runs = list_runs(ctx.state)
    assert runs[0].id == result.id and runs[0].status == "passed"
    assert len(system_history(ctx.state, ["goka-juki"])["goka-juki"]) == 1
    from dc.usage import measure_usage

    usage = measure_usage(ctx.state)
    assert set(usage) >= {"goka", "naka", "hitachiomiya", "kasumigaura"}
    assert all(usage[t].drill_seconds > 0 for t in ("goka", "naka")), "drill time is measured (and never billed)"
    html = Path(result.reports["html"]).read_text(encoding="utf-8")
    assert "<svg" in html and "hitachiomiya-juki" in html and "PASSED" in html
    ja = Path(result.reports["ja:goka"]).read_text(encoding="utf-8")
    assert "訓練実施報告（五霞町）" in ja and "住民基本台帳" in ja and "naka" not in ja
    doc = json.loads(Path(result.reports["json"]).read_text(encoding="utf-8"))
    assert doc["status"] == "passed" and len(doc["systems"]) == 8


def test_a_tenant_drill_takes_its_systems_and_their_dependencies(example: Built) -> None:
    result = run_drill(example.context(), DrillRequest(mode="isolated", systems=("naka-kaigo",)), handle_signals=False)
    assert result.status == "passed", result.verdict()
    assert [(s.system, s.as_dependency) for s in result.systems] == [("naka-juki", True), ("naka-kaigo", False)]
    ctx = example.context()
    ctx.settings = ctx.settings.model_copy(update={"blackouts": (Blackout(name="通年", start="01-01", end="12-31"),)})
    tenant = run_drill(ctx, DrillRequest(mode="isolated", tenant="goka"), handle_signals=False)
    assert [s.system for s in tenant.systems] == ["goka-juki", "goka-kokuho"]
    assert tenant.status == "passed"
    assert any("blackout period '通年'" in w for w in tenant.warnings), "a manual drill in a blackout is noted"


def test_point_in_time_restores_the_last_good_snapshot(own_example: Built) -> None:
    ctx = own_example.context()
    first = run_drill(ctx, DrillRequest(mode="isolated", systems=("naka-juki",)), handle_signals=False)
    good_time = first.systems[0].snapshot_time
    assert good_time is not None
    # "Ransomware" encrypts the residents table; the next backup faithfully keeps the damage.
    with psycopg.connect(own_example.source_dsn("naka-juki"), autocommit=True) as conn:
        conn.execute("DELETE FROM residents WHERE atena_no < 1000")
    own_example.backup_and_ship()
    event = good_time + timedelta(microseconds=1)
    result = run_drill(
        ctx, DrillRequest(mode="point-in-time", systems=("naka-juki",), before=event), handle_signals=False
    )
    naka = result.systems[0]
    assert naka.snapshot_id == first.systems[0].snapshot_id
    assert naka.tables["public.residents"] == 1501
    assert result.rpo_reference == event and naka.rpo_seconds is not None and naka.rpo_seconds < 1
    latest = run_drill(ctx, DrillRequest(mode="isolated", systems=("naka-juki",)), handle_signals=False)
    assert latest.systems[0].tables["public.residents"] == 1501 - 999


def test_the_last_known_good_snapshot_the_signals_recorded_is_what_the_drill_restores(
    own_example: Built, cli: Cli
) -> None:
    from sqlalchemy import insert

    from dc.state import backup_runs, open_state

    ctx = own_example.context()
    first = run_drill(ctx, DrillRequest(mode="isolated", systems=("naka-juki",)), handle_signals=False)
    with psycopg.connect(own_example.source_dsn("naka-juki"), autocommit=True) as conn:
        conn.execute("DELETE FROM residents WHERE atena_no < 1000")
    attacked = datetime.now(UTC)
    own_example.backup_and_ship()
    with open_state(None).begin() as conn:  # what the backup job records when the signals fire
        conn.execute(
            insert(backup_runs).values(
                system="naka-juki", repository="file:///r", source="postgres:x", started_at=attacked, ok=True,
                anomaly="compressibility 0.99 > 0.40", last_known_good=first.systems[0].snapshot_id,
            )
        )  # fmt: skip
    hinted = cli(
        "drill", "run", "--config", str(own_example.config_path), "--mode", "point-in-time",
        "--system", "naka-juki", "--last-known-good", "--json",
    )  # fmt: skip
    assert hinted.returncode == 0, hinted.stderr
    naka = json.loads(hinted.stdout)["systems"][0]
    assert naka["snapshot_id"] == first.systems[0].snapshot_id
    assert naka["tables"]["public.residents"] == 1501
    # asked for a moment of its own, the drill still names what the signals recorded
    event = (first.systems[0].snapshot_time + timedelta(microseconds=1)).isoformat()  # type: ignore[operator]
    own = cli(
        "drill", "run", "--config", str(own_example.config_path), "--mode", "point-in-time",
        "--system", "naka-juki", "--before", event,
    )  # fmt: skip
    assert own.returncode == 0, own.stderr
    assert "hint: naka-juki looked mass-encrypted" in own.stderr and first.systems[0].snapshot_id[:8] in own.stderr


def test_point_in_time_before_every_snapshot_fails_with_the_reason(example: Built) -> None:
    first_time = min(s.snapshot_time for s in run_drill(example.context(), DrillRequest(mode="readiness")).systems)  # type: ignore[type-var]
    result = run_drill(
        example.context(),
        DrillRequest(mode="point-in-time", systems=("goka-juki",), before=first_time - timedelta(days=1)),  # type: ignore[operator]
        handle_signals=False,
    )
    assert result.status == "failed"
    assert "no snapshot of goka-juki taken before" in (result.systems[0].error or "")
    assert "backed up and replicated" in (result.systems[0].fix or "")


def test_readiness_changes_nothing_and_flags_a_stale_offsite_copy(example: Built) -> None:
    before = (set(example.sandbox_databases()), example.drill_dir_entries())
    result = run_drill(example.context(), DrillRequest(mode="readiness"), handle_signals=False)
    assert result.status == "passed", result.verdict()
    assert (set(example.sandbox_databases()), example.drill_dir_entries()) == before
    names = {c.name: c.ok for c in result.checks}
    assert names["offsite repository verifies"] and names["drill server reachable"]
    assert names["no sandboxes left by earlier drills"] and names["drill directory is not production"]
    assert any("compete with production" in w for w in result.warnings)
    assert all(s.rpo_met for s in result.systems) and result.cleanup is None

    stale = example.config.model_copy(
        update={
            "systems": {
                **example.config.systems,
                "goka-juki": example.config.systems["goka-juki"].model_copy(update={"rpo": 0}),
            }
        }
    )
    ctx = example.context()
    ctx.config = stale
    flagged = run_drill(ctx, DrillRequest(mode="readiness", tenant="goka"), handle_signals=False)
    assert flagged.status == "failed"
    goka = next(s for s in flagged.systems if s.system == "goka-juki")
    assert not goka.rpo_met and "newest offsite snapshot is" in (goka.error or "")


def test_drills_report_pdf_prints_every_runs_report_or_says_why_not(
    example: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With drills.report_pdf every run leaves report.pdf; without a Chromium the run still passes, and says so."""
    ctx = example.context()
    ctx.settings = ctx.settings.model_copy(update={"report_pdf": True, "report_dir": str(tmp_path)})
    printed = run_drill(ctx, DrillRequest(mode="readiness", tenant="goka"), handle_signals=False)
    assert printed.status == "passed", printed.verdict()
    assert Path(printed.reports["pdf"]).read_bytes().startswith(b"%PDF-")
    assert Path(printed.reports["pdf"]).parent == Path(printed.reports["html"]).parent

    monkeypatch.setenv("BCPCTL_CHROMIUM", str(tmp_path / "no-chromium"))
    unprinted = run_drill(ctx, DrillRequest(mode="readiness", tenant="goka"), handle_signals=False)
    assert unprinted.status == "passed" and "pdf" not in unprinted.reports
    assert any(w.startswith("no PDF report (drills.report_pdf): no Chromium") for w in unprinted.warnings)
    stored = json.loads(Path(unprinted.reports["json"]).read_text(encoding="utf-8"))
    assert any("no PDF report" in w for w in stored["warnings"]) and "pdf" not in stored["reports"]
    assert not (Path(unprinted.reports["html"]).parent / "report.pdf").exists()


def test_runs_are_stored_in_a_postgresql_control_database(example: Built) -> None:
    from dc.state import open_state
    from failover.context import RunContext
    from failover.records import last_success, load_document
    from failover.reports import render_report

    state = open_state(example.server.create_database(example.prefix + "control"), create=True)
    assert state.dialect.name == "postgresql"
    ctx = RunContext.create(example.config, example.config_dir, state)
    result = run_drill(ctx, DrillRequest(mode="isolated", tenant="goka"), handle_signals=False)
    assert result.status == "passed", result.verdict()
    assert list_runs(state)[0].id == result.id
    record, doc = load_document(state, result.id[:20])  # type: ignore[misc]
    assert record.status == "passed" and doc is not None and doc["id"] == result.id
    assert set(last_success(state)) == {"goka-juki", "goka-kokuho"}
    assert "訓練実施報告（五霞町）" in render_report(state, result.id, "ja", {"goka": "五霞町"})


@pytest.mark.sshd
def test_remote_storage_fetches_whole_packs_per_system_and_leaves_no_temporary_files(
    example: Built,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sshd_server: SshServer,
    sftp_env: dict[str, str],
) -> None:
    """The offsite replica on a real SFTP server: no cheap ranged reads, so packs come whole."""
    import tempfile

    from dc.state import open_state
    from failover.context import RunContext

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    url = sftp_url(sshd_server, example.offsite_repo())
    offsite = example.config.sites["offsite"].model_copy(
        update={"repository": url, "known_hosts": str(sshd_server.known_hosts)}
    )
    config = example.config.model_copy(update={"sites": {**example.config.sites, "offsite": offsite}})
    ctx = RunContext.create(config, example.config_dir, open_state(None))
    result = run_drill(ctx, DrillRequest(mode="isolated", tenant="naka"), handle_signals=False)
    assert result.status == "passed", result.verdict()
    # whole packs, through the metered backend of each system's own view
    assert all(s.fetched_bytes > 0 for s in result.systems), [(s.fetched_bytes, s.steps) for s in result.systems]
    assert list(scratch.iterdir()) == [], "every per-system pack cache is removed"
