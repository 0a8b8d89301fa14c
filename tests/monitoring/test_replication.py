"""Replication wired into the scheduler and /metrics: the job ships ciphertext, the ledger's
lag and runs become per-site and per-system metrics."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select

from backup.jobs import backup_systems, site_repository
from backup.repository import init_repository
from dc.errors import BcpError
from monitoring.tasks import JobContext, check, replicate
from monitoring.timestamps import aware
from replication import ledger
from replication.url import open_backend
from tests.conftest import PASSWORD
from tests.monitoring.conftest import CHEAP_KDF, TWO_SYSTEMS, Lab, job_spec, scrape

SYSTEMS = TWO_SYSTEMS


@pytest.fixture
def backed_up(lab_factory: Callable[..., Lab]) -> tuple[Lab, JobContext]:
    lab = lab_factory(SYSTEMS)
    engine = lab.engine()
    config = lab.config
    with site_repository(config, "primary", open_backend, lab.root) as repo:
        assert all(o.ok for o in backup_systems(config, repo, None, state=engine, config_dir=lab.root))
    return lab, JobContext(engine, config, lab.root, open_backend)


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
    assert set(lags) == set(SYSTEMS) and run.ok and run.bytes_sent > 0
    value = scrape(lab, engine).get_sample_value
    for system, tenant in (("goka-juki", "goka"), ("naka-juki", "naka")):
        labels = {"site": "offsite", "tenant": tenant, "system": system}
        assert value("bcp_replication_lag_seconds", labels) == lags[system].lag_seconds == 0
        newest = aware(lags[system].target_newest)
        assert value("bcp_offsite_newest_snapshot_timestamp_seconds", labels) == pytest.approx(newest.timestamp())
    assert value("bcp_replication_sent_bytes", {"site": "offsite"}) == run.bytes_sent
    assert value("bcp_replication_last_success_timestamp_seconds", {"site": "offsite"}) == pytest.approx(
        aware(run.finished_at).timestamp()
    )
    assert value("bcp_metrics_source_ok", {"source": "replication"}) == 1
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


def test_remote_repository_urls_match_what_their_backends_record() -> None:
    from monitoring.sources import repository_url_key
    from replication.s3 import parse_s3_url
    from replication.sftp import parse_sftp_url

    s3 = "s3://bcp-offsite/ibaraki/?region=default&endpoint=http://127.0.0.1:7480"
    assert (
        repository_url_key(s3)
        == parse_s3_url(s3).url
        == "s3://bcp-offsite/ibaraki?endpoint=http://127.0.0.1:7480&region=default"
    )
    sftp = "sftp://bcp@127.0.0.1:2222/srv/bcp/offsite"
    assert repository_url_key(sftp) == parse_sftp_url(sftp).url
    assert repository_url_key("s3://") == "s3://"  # unparsable: kept, and simply matches nothing
