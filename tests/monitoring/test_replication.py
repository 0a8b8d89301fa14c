"""Replication wired into the scheduler and /metrics: the job ships ciphertext, the ledger's
lag and runs become per-site and per-system metrics."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from backup.jobs import backup_systems, site_repository
from backup.opening import init_repository
from dc.errors import BcpError
from dc.state import backup_runs
from monitoring.tasks import JobContext, check, replicate
from replication import ledger
from storage.url import open_backend, repository_url_key
from tests.conftest import PASSWORD
from tests.monitoring.conftest import CHEAP_KDF, TWO_SYSTEMS, Lab, job_spec, scrape, seed_sqlite

SYSTEMS = TWO_SYSTEMS


@pytest.fixture
def backed_up(lab_factory: Callable[..., Lab]) -> tuple[Lab, JobContext]:
    lab = lab_factory(SYSTEMS)
    engine = lab.engine()
    config = lab.config
    with site_repository(config, "primary", lab.root) as repo:
        assert all(o.ok for o in backup_systems(config, repo, None, state=engine, config_dir=lab.root))
    return lab, JobContext(engine, config, lab.root)


def test_replication_job_ships_and_exports_lag(backed_up: tuple[Lab, JobContext]) -> None:
    lab, context = backed_up
    engine = context.engine
    before = scrape(lab, engine).get_sample_value
    assert (
        before(
            "bcp_offsite_newest_snapshot_timestamp_seconds",
            {"site": "offsite", "tenant": "goka", "system": "goka-juki"},
        )
        is None
    )
    summary = replicate(context, job_spec("replicate:offsite", "replicate", site="offsite"))
    assert "bytes sent" in summary
    with engine.connect() as conn:
        lags = {row.system: row for row in conn.execute(select(ledger.lag))}
        (run,) = conn.execute(select(ledger.runs)).all()
    # the control state ships with every cycle (failover.controlplane): its copy has a lag row too
    assert set(lags) == {*SYSTEMS, "_control"} and run.ok and run.bytes_sent > 0
    value = scrape(lab, engine).get_sample_value
    for system, tenant in (("goka-juki", "goka"), ("naka-juki", "naka")):
        labels = {"site": "offsite", "tenant": tenant, "system": system}
        assert value("bcp_replication_lag_seconds", labels) == lags[system].lag_seconds == 0
        newest = lags[system].target_newest
        assert value("bcp_offsite_newest_snapshot_timestamp_seconds", labels) == pytest.approx(newest.timestamp())
        # when the lag was measured: a follower or replication that stopped leaves it to age
        measured = lags[system].measured_at.timestamp()
        assert value("bcp_recovery_point_measured_timestamp_seconds", labels) == pytest.approx(measured)
    assert value("bcp_replication_sent_bytes", {"site": "offsite"}) == run.bytes_sent
    assert value("bcp_replication_last_success_timestamp_seconds", {"site": "offsite"}) == pytest.approx(
        run.finished_at.timestamp()
    )
    assert value("bcp_metrics_source_ok", {"source": "replication"}) == 1
    # the control state's copy shipped with the cycle: its age at the offsite, against its RPO
    assert "control state copied" in summary
    assert 0 <= value("bcp_control_plane_copy_age_seconds", {"site": "offsite"}) < 60
    assert value("bcp_control_plane_rpo_seconds") == 900  # the shortest system RPO
    assert value("bcp_metrics_source_ok", {"source": "control_plane"}) == 1
    # The replica is a real repository: the scheduled check of the offsite now passes.
    check(context, job_spec("check:offsite", "check", site="offsite"))
    assert scrape(lab, engine).get_sample_value("bcp_repository_check_ok", {"site": "offsite"}) == 1


def test_a_failed_replication_fails_the_job_and_reports_no_success(backed_up: tuple[Lab, JobContext]) -> None:
    lab, context = backed_up
    # Another repository already lives where the offsite copy should go: replication refuses.
    init_repository(open_backend(lab.raw["sites"]["offsite"]["repository"], create=True), PASSWORD, kdf=CHEAP_KDF)
    with pytest.raises(BcpError, match="holds repository"):
        replicate(context, job_spec("replicate:offsite", "replicate", site="offsite"))
    with context.engine.connect() as conn:
        (run,) = conn.execute(select(ledger.runs)).all()
    assert not run.ok
    value = scrape(lab, context.engine).get_sample_value
    assert value("bcp_replication_last_success_timestamp_seconds", {"site": "offsite"}) is None
    assert (
        value(
            "bcp_offsite_newest_snapshot_timestamp_seconds",
            {"site": "offsite", "tenant": "goka", "system": "goka-juki"},
        )
        is None
    )


def _added_bytes(context: JobContext) -> dict[str, list[int]]:
    """Bytes each recorded successful backup added, per system, in run order."""
    added: dict[str, list[int]] = {}
    with context.engine.connect() as conn:
        for row in conn.execute(select(backup_runs).where(backup_runs.c.ok.is_(True)).order_by(backup_runs.c.id)):
            added.setdefault(row.system, []).append(row.bytes_added)
    return added


def test_pending_bytes_grow_with_backups_and_drain_with_replication(backed_up: tuple[Lab, JobContext]) -> None:
    lab, context = backed_up
    goka = {"site": "offsite", "tenant": "goka", "system": "goka-juki"}
    naka = {"site": "offsite", "tenant": "naka", "system": "naka-juki"}
    first = _added_bytes(context)
    value = scrape(lab, context.engine).get_sample_value
    # Never replicated: everything the backups wrote is still to be shipped.
    assert value("bcp_replication_pending_bytes", goka) == first["goka-juki"][0] > 0
    assert value("bcp_replication_pending_bytes", naka) == first["naka-juki"][0] > 0

    replicate(context, job_spec("replicate:offsite", "replicate", site="offsite"))
    value = scrape(lab, context.engine).get_sample_value
    assert value("bcp_replication_pending_bytes", goka) == value("bcp_replication_pending_bytes", naka) == 0

    # Only goka changes and is backed up again: only goka has a backlog, of exactly that run.
    seed_sqlite(Path(lab.raw["systems"]["goka-juki"]["source"]["path"]), 2000)
    with site_repository(context.config, "primary", lab.root) as repo:
        (outcome,) = backup_systems(context.config, repo, ["goka-juki"], state=context.engine, config_dir=lab.root)
    assert outcome.ok
    second = _added_bytes(context)["goka-juki"][1]
    value = scrape(lab, context.engine).get_sample_value
    assert value("bcp_replication_pending_bytes", goka) == second > 0
    assert value("bcp_replication_pending_bytes", naka) == 0

    replicate(context, job_spec("replicate:offsite", "replicate", site="offsite"))
    assert scrape(lab, context.engine).get_sample_value("bcp_replication_pending_bytes", goka) == 0


def test_failed_backups_and_other_repositories_are_not_pending(backed_up: tuple[Lab, JobContext]) -> None:
    lab, context = backed_up
    replicate(context, job_spec("replicate:offsite", "replicate", site="offsite"))
    later = datetime.now(UTC) + timedelta(hours=1)
    primary = repository_url_key(lab.raw["sites"]["primary"]["repository"])
    with context.engine.begin() as conn:
        common = {"system": "goka-juki", "tenant": "goka", "source": "x", "started_at": later, "bytes_added": 10**6}
        conn.execute(insert(backup_runs).values(repository=primary, ok=False, **common))
        conn.execute(insert(backup_runs).values(repository="file:///elsewhere", ok=True, **common))
        conn.execute(insert(backup_runs).values(repository=primary, ok=True, **common | {"bytes_added": 7}))
    value = scrape(lab, context.engine).get_sample_value
    assert value("bcp_replication_pending_bytes", {"site": "offsite", "tenant": "goka", "system": "goka-juki"}) == 7


def test_remote_repository_urls_match_what_their_backends_record() -> None:
    from storage.s3 import parse_s3_url
    from storage.sftp import parse_sftp_url
    from storage.url import repository_url_key

    s3 = "s3://bcp-offsite/ibaraki/?region=default&endpoint=http://127.0.0.1:7480"
    assert (
        repository_url_key(s3)
        == parse_s3_url(s3).url
        == "s3://bcp-offsite/ibaraki?endpoint=http://127.0.0.1:7480&region=default"
    )
    sftp = "sftp://bcp@127.0.0.1:2222/srv/bcp/offsite"
    assert repository_url_key(sftp) == parse_sftp_url(sftp).url
    assert repository_url_key("s3://") == "s3://"  # unparsable: kept, and simply matches nothing
