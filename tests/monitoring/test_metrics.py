"""The collector reads real control databases (SQLite and PostgreSQL) at scrape time."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import create_engine, select

from backup.jobs import backup_systems, site_repository
from dc.clock import utcnow
from dc.state import backup_runs, open_state
from monitoring import catalog, checks, observations
from monitoring.metrics import ControlDatabaseCollector, build_registry, leader_provider
from monitoring.provider import SourceContext
from monitoring.runs import RunLedger
from monitoring.timestamps import epoch
from storage.url import open_backend, repository_url_key
from tests.monitoring.conftest import Lab


def fresh(lab: Lab, engine, providers=None) -> CollectorRegistry:  # type: ignore[no-untyped-def]
    registry = CollectorRegistry()
    collector = ControlDatabaseCollector(SourceContext(engine, lab.config))
    if providers is not None:
        collector.providers = providers
    registry.register(collector)
    return registry


def run_backups(lab: Lab, engine, systems: list[str]):  # type: ignore[no-untyped-def]
    config = lab.config
    with site_repository(config, "primary", lab.root) as repo:
        return backup_systems(config, repo, systems, state=engine, config_dir=lab.root)


def test_registering_does_not_touch_the_database(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory({"goka-juki": {"tenant": "goka", "rpo": "15m"}})
    # Nothing listens on port 1: any query would fail. describe() must not run one.
    unreachable = create_engine("postgresql+psycopg://bcp@127.0.0.1:1/none", connect_args={"connect_timeout": 1})
    registry = CollectorRegistry()
    registry.register(ControlDatabaseCollector(SourceContext(unreachable, lab.config)))
    # A scrape then reports each database provider as failing, and still serves the config values.
    assert registry.get_sample_value("bcp_metrics_source_ok", {"source": "backup"}) == 0
    assert registry.get_sample_value("bcp_metrics_source_ok", {"source": "config"}) == 1
    assert registry.get_sample_value("bcp_system_rpo_seconds", {"tenant": "goka", "system": "goka-juki"}) == 900


def test_backup_metrics_equal_the_recorded_runs(lab_factory: Callable[..., Lab], control_url: str) -> None:
    lab = lab_factory(
        {
            "goka-juki": {"tenant": "goka", "rpo": "15m", "rto": "4h"},
            "naka-juki": {"tenant": "naka", "rpo": "1h"},
            "naka-lost": {"tenant": "naka", "rpo": "1h", "missing": True},
        },
        control_db=control_url,
    )
    engine = open_state(control_url)
    outcomes = run_backups(lab, engine, ["goka-juki", "naka-juki", "naka-lost"])
    assert [o.ok for o in outcomes] == [True, True, False]
    registry = fresh(lab, engine)
    with engine.connect() as conn:
        rows = {row.system: row for row in conn.execute(select(backup_runs))}
    for system, tenant in (("goka-juki", "goka"), ("naka-juki", "naka")):
        labels = {"site": "primary", "tenant": tenant, "system": system}
        row = rows[system]
        assert registry.get_sample_value("bcp_backup_last_success_timestamp_seconds", labels) == pytest.approx(
            epoch(row.finished_at)
        )
        assert registry.get_sample_value("bcp_backup_duration_seconds", labels) == pytest.approx(row.seconds)
        assert registry.get_sample_value("bcp_backup_added_bytes", labels) == row.bytes_added > 0
        assert registry.get_sample_value("bcp_backup_read_bytes", labels) == row.bytes_in > 0
        assert registry.get_sample_value("bcp_backup_last_run_ok", labels) == 1
    lost = {"site": "primary", "tenant": "naka", "system": "naka-lost"}
    assert registry.get_sample_value("bcp_backup_last_run_ok", lost) == 0
    assert registry.get_sample_value("bcp_backup_last_success_timestamp_seconds", lost) is None
    assert registry.get_sample_value("bcp_system_rto_seconds", {"tenant": "goka", "system": "goka-juki"}) == 14400
    assert registry.get_sample_value("bcp_system_rto_seconds", {"tenant": "naka", "system": "naka-juki"}) is None
    assert registry.get_sample_value("bcp_metrics_source_ok", {"source": "backup"}) == 1


def test_a_failed_run_keeps_the_last_success(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory({"goka-juki": {"tenant": "goka", "rpo": "15m"}})
    engine = lab.engine()
    run_backups(lab, engine, ["goka-juki"])
    first = fresh(lab, engine).get_sample_value(
        "bcp_backup_last_success_timestamp_seconds", {"site": "primary", "tenant": "goka", "system": "goka-juki"}
    )
    Path(lab.raw["systems"]["goka-juki"]["source"]["path"]).unlink()
    (outcome,) = run_backups(lab, engine, ["goka-juki"])
    assert not outcome.ok
    registry = fresh(lab, engine)
    labels = {"site": "primary", "tenant": "goka", "system": "goka-juki"}
    assert registry.get_sample_value("bcp_backup_last_run_ok", labels) == 0
    assert registry.get_sample_value("bcp_backup_last_success_timestamp_seconds", labels) == first


def test_backups_into_other_repositories_are_not_a_sites_backups(
    lab_factory: Callable[..., Lab], tmp_path: Path
) -> None:
    lab = lab_factory({"goka-juki": {"tenant": "goka", "rpo": "15m"}})
    engine = lab.engine()
    with engine.begin() as conn:
        conn.execute(
            backup_runs.insert().values(
                system="goka-juki",
                tenant="goka",
                repository=f"file://{tmp_path / 'elsewhere'}",
                source="sqlite:/x",
                started_at=utcnow(),
                finished_at=utcnow(),
                ok=True,
            )
        )
    registry = fresh(lab, engine)
    assert (
        registry.get_sample_value(
            "bcp_backup_last_run_ok", {"site": "primary", "tenant": "goka", "system": "goka-juki"}
        )
        is None
    )


def test_repository_url_key_matches_what_local_backends_record(tmp_path: Path) -> None:
    backend = open_backend(str(tmp_path), create=True)
    assert repository_url_key(str(tmp_path)) == backend.url
    assert repository_url_key(f"file://{tmp_path}") == backend.url
    assert (
        repository_url_key("s3://bucket/prefix?endpoint=http://127.0.0.1:7480")
        == "s3://bucket/prefix?endpoint=http://127.0.0.1:7480"
    )


def test_check_health_and_scheduler_metrics(lab_factory: Callable[..., Lab], control_url: str) -> None:
    lab = lab_factory(
        {"goka-juki": {"tenant": "goka", "rpo": "15m"}},
        hosts={
            "hv01": {"site": "primary", "role": "hypervisor", "address": "127.0.0.1", "port": 2201},
            "remote": {"site": "offsite", "role": "hypervisor", "address": "hv.invalid"},
        },
        control_db=control_url,
    )
    engine = open_state(control_url)
    now = utcnow()
    checks.record_check(engine, checks.CheckRecord("primary", now, now, False, True, (1, 7), problems=3, detail="x"))
    later = utcnow()
    checks.record_check(engine, checks.CheckRecord("primary", later, later, True, True, (2, 7), bytes_read=4096))
    observations.record(
        engine,
        [
            observations.Observation("host", "hv01", False, now, site="primary", probe="tcp_connect"),
            observations.Observation("host", "remote", None, now, site="offsite", probe="tcp_connect"),
            observations.Observation("repository", "primary", True, now, site="primary"),
            observations.Observation("repository_size", "primary", True, now, site="primary", value=12345.0),
            observations.Observation("filesystem", "primary", True, now, site="primary", value=10.0, value2=100.0),
            observations.Observation("source", "goka-juki", True, now, tenant="goka", probe="sqlite"),
            observations.Observation("host", "gone-host", True, now, site="primary", probe="tcp_connect"),
        ],
    )
    ledger = RunLedger(engine, "test-holder", claim_ttl=30)
    for status in ("ok", "failed", "failed"):
        claim = ledger.claim("backup:goka-juki", "backup")
        assert claim is not None
        ledger.finish(claim, status, None if status == "ok" else "boom")
    ledger.count_missed("backup:goka-juki")
    registry = fresh(lab, engine)
    value = registry.get_sample_value
    assert value("bcp_repository_check_ok", {"site": "primary"}) == 1  # the newest check wins
    assert value("bcp_repository_check_read_bytes", {"site": "primary"}) == 4096
    assert value("bcp_repository_check_timestamp_seconds", {"site": "primary"}) == pytest.approx(later.timestamp())
    assert value("bcp_host_up", {"site": "primary", "host": "hv01", "probe": "tcp_connect"}) == 0
    assert value("bcp_host_up", {"site": "offsite", "host": "remote", "probe": "tcp_connect"}) is None  # not probed
    assert (
        value("bcp_host_up", {"site": "primary", "host": "gone-host", "probe": "tcp_connect"}) is None
    )  # not configured
    assert value("bcp_repository_up", {"site": "primary"}) == 1
    assert value("bcp_repository_size_bytes", {"site": "primary"}) == 12345
    assert value("bcp_repository_filesystem_avail_bytes", {"site": "primary"}) == 10
    assert value("bcp_repository_filesystem_size_bytes", {"site": "primary"}) == 100
    assert value("bcp_system_source_up", {"tenant": "goka", "system": "goka-juki"}) == 1
    assert value("bcp_health_check_timestamp_seconds", {"check": "host"}) == pytest.approx(now.timestamp())
    job = {"job_id": "backup:goka-juki"}
    assert value("bcp_scheduler_job_runs_total", job) == 3
    assert value("bcp_scheduler_job_failures_total", job) == 2
    assert value("bcp_scheduler_job_missed_total", job) == 1
    assert value("bcp_scheduler_job_consecutive_failures", job) == 2
    assert value("bcp_scheduler_job_last_success_timestamp_seconds", job) is not None


def test_a_failing_provider_is_reported_and_the_rest_still_served(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory({"goka-juki": {"tenant": "goka", "rpo": "15m"}})
    engine = lab.engine()

    def broken(_ctx):  # type: ignore[no-untyped-def]
        raise RuntimeError("table missing")

    from monitoring.sources import PROVIDERS

    registry = fresh(lab, engine, {**PROVIDERS, "drill": broken})
    assert registry.get_sample_value("bcp_metrics_source_ok", {"source": "drill"}) == 0
    assert registry.get_sample_value("bcp_metrics_source_ok", {"source": "config"}) == 1
    assert registry.get_sample_value("bcp_system_rpo_seconds", {"tenant": "goka", "system": "goka-juki"}) == 900


def test_exposition_uses_only_catalogued_names_and_bounded_labels(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory({"goka-juki": {"tenant": "goka", "rpo": "15m"}})
    engine = lab.engine()
    run_backups(lab, engine, ["goka-juki"])
    registry = build_registry(SourceContext(engine, lab.config), {"leader": leader_provider(lambda: True)})
    text = generate_latest(registry).decode()
    allowed = {name for family in catalog.FAMILIES for name in catalog.exposed_names(family)}
    seen = set()
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)  # type: ignore[union-attr]
        if name.startswith("bcp_"):
            assert name in allowed, name
            seen.add(name)
            # no snapshot ids, run ids or paths in labels
            assert not re.search(r'"[0-9a-f]{16,}"', line), line
            assert "/" not in "".join(re.findall(r'="([^"]*)"', line)), line
    assert "bcp_scheduler_leader" in seen
    assert registry.get_sample_value("bcp_scheduler_leader") == 1


def test_catalog_is_consistent() -> None:
    names = [family.name for family in catalog.FAMILIES]
    assert len(names) == len(set(names))
    for family in catalog.FAMILIES:
        assert re.fullmatch(r"bcp_[a-z0-9_]+", family.name)
        assert not family.name.endswith("_total"), "counters get _total from the client library"
        assert "job" not in family.labels, "'job' is Prometheus's own target label"
        if "timestamp" in family.name:
            assert family.name.endswith("_timestamp_seconds")
