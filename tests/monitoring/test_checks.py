"""Scheduled repository checks: the rolling read-data subset and recorded verdicts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from backup.jobs import backup_systems, site_repository
from monitoring import checks
from monitoring.metrics import ControlDatabaseCollector
from monitoring.schedule import JobSpec, interval_trigger
from monitoring.sources import SourceContext
from monitoring.tasks import JobContext, JobFailed, check
from replication.url import open_backend
from tests.monitoring.conftest import Lab, seed_sqlite


def test_next_subset_rotates_through_all_slices() -> None:
    assert checks.next_subset(None, 7) == (1, 7)
    seen, current = [], None
    for _ in range(8):
        current = checks.next_subset(current, 7)
        seen.append(current[0])
    assert seen == [1, 2, 3, 4, 5, 6, 7, 1]
    assert checks.next_subset((5, 7), 3) == (1, 3)  # the operator changed M
    with pytest.raises(ValueError):
        checks.next_subset(None, 0)


def _spec(site: str) -> JobSpec:
    return JobSpec(f"check:{site}", "check", interval_trigger(f"check:{site}", 60), 60, site=site)


@pytest.fixture
def populated(lab_factory: Callable[..., Lab]) -> Lab:
    systems = {f"sys-{i}": {"tenant": "goka"} for i in range(6)}
    lab = lab_factory(systems)
    config = lab.config
    for round_ in range(2):
        for system_id in systems:
            seed_sqlite(Path(lab.raw["systems"][system_id]["source"]["path"]), 10 + round_)
        with site_repository(config, "primary", open_backend, lab.root) as repo:
            assert all(o.ok for o in backup_systems(config, repo, None, config_dir=lab.root))
    return lab


def test_m_scheduled_checks_read_every_pack_once(populated: Lab) -> None:
    engine = populated.engine()
    context = JobContext(engine, populated.config, populated.root, open_backend, check_slices=3)
    results = [check(context, _spec("primary")) for _ in range(3)]
    assert [r.split(":")[0] for r in results] == ["slice 1/3", "slice 2/3", "slice 3/3"]
    (latest,) = checks.latest_checks(engine)
    assert latest.ok and latest.subset == (3, 3)
    with engine.connect() as conn:
        rows = conn.execute(select(checks.repository_checks)).all()
    assert sum(row.packs_read for row in rows) == latest.packs > 1
    assert checks.next_subset(checks.last_subset(engine, "primary"), 3) == (1, 3)


def test_a_damaged_pack_fails_the_check_and_the_metric(populated: Lab) -> None:
    engine = populated.engine()
    repo_root = Path(populated.raw["sites"]["primary"]["repository"])
    pack = sorted((repo_root / "data").rglob("*"))[-1]
    assert pack.is_file()
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0xFF
    pack.write_bytes(bytes(data))
    context = JobContext(engine, populated.config, populated.root, open_backend, check_slices=1)
    with pytest.raises(JobFailed, match="check of site primary found"):
        check(context, _spec("primary"))
    (rec,) = checks.latest_checks(engine)
    assert not rec.ok and rec.problems >= 1 and pack.name in (rec.detail or "")
    registry = CollectorRegistry()
    registry.register(ControlDatabaseCollector(SourceContext(engine, populated.config)))
    assert registry.get_sample_value("bcp_repository_check_ok", {"site": "primary"}) == 0
    assert registry.get_sample_value("bcp_repository_check_problems", {"site": "primary"}) == rec.problems


def test_a_repository_that_cannot_be_opened_is_a_failed_check(populated: Lab) -> None:
    engine = populated.engine()
    context = JobContext(engine, populated.config, populated.root, open_backend)
    with pytest.raises(JobFailed):
        check(context, _spec("offsite"))  # never initialised
    (rec,) = [r for r in checks.latest_checks(engine) if r.site == "offsite"]
    assert not rec.ok and rec.subset is None and "does not exist" in (rec.detail or "")
