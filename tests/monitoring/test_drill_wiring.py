"""failover/ wired into the scheduler and /metrics: a blackout-aware drill job, and each
system's newest verdict, measured RTO/RPO, last pass and overdue flag from drill_systems."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest

from backup.jobs import backup_systems, site_repository
from dc.clock import JST, utcnow
from monitoring.tasks import JobContext, JobFailed, drill, replicate
from tests.monitoring.conftest import TWO_SYSTEMS, Lab, job_spec, scrape

SYSTEMS = TWO_SYSTEMS


@pytest.fixture
def replicated(lab_factory: Callable[..., Lab]) -> tuple[Lab, JobContext]:
    lab = lab_factory(SYSTEMS)
    lab.raw["sites"]["offsite"]["drill_dir"] = str(lab.root / "offsite" / "drill")
    lab.write()
    engine = lab.engine()
    config = lab.config
    with site_repository(config, "primary", lab.root) as repo:
        assert all(o.ok for o in backup_systems(config, repo, None, state=engine, config_dir=lab.root))
    context = JobContext(engine, config, lab.root)
    replicate(context, job_spec("replicate:offsite", "replicate", site="offsite"))
    return lab, context


def test_drill_job_exports_measured_rto_rpo_and_overdue(replicated: tuple[Lab, JobContext]) -> None:
    lab, context = replicated
    engine = context.engine
    before = scrape(lab, engine).get_sample_value
    assert before("bcp_drill_overdue", {"tenant": "goka", "system": "goka-juki"}) == 1  # never drilled
    assert before("bcp_drill_last_ok", {"tenant": "goka", "system": "goka-juki"}) is None
    summary = drill(context, job_spec("drill", "drill"))
    assert "passed" in summary
    value = scrape(lab, engine).get_sample_value
    for system, tenant in (("goka-juki", "goka"), ("naka-juki", "naka")):
        labels = {"tenant": tenant, "system": system}
        assert value("bcp_drill_last_ok", labels) == 1
        assert value("bcp_drill_overdue", labels) == 0
        assert 0 < value("bcp_drill_rto_seconds", labels) < 600  # type: ignore[operator]
        assert value("bcp_drill_rpo_seconds", labels) > 0  # type: ignore[operator]
        assert value("bcp_drill_last_success_timestamp_seconds", labels) == pytest.approx(utcnow().timestamp(), abs=120)


def test_drill_job_skips_blackout_days(replicated: tuple[Lab, JobContext]) -> None:
    lab, _ = replicated
    today = datetime.now(JST).strftime("%m-%d")
    lab.raw["drills"] = {"blackouts": [{"name": "確定申告", "start": today, "end": today}]}
    lab.write()
    context = JobContext(lab.engine(), lab.config, lab.root)
    assert drill(context, job_spec("drill", "drill")) == f"not run: blackout '確定申告' ({today}..{today})"
    assert (
        scrape(lab, context.engine).get_sample_value("bcp_drill_last_ok", {"tenant": "goka", "system": "goka-juki"})
        is None
    )


def test_a_failed_drill_fails_the_job_and_the_metric(replicated: tuple[Lab, JobContext]) -> None:
    lab, context = replicated
    offsite = lab.root / "offsite" / "repo"
    for pack in (offsite / "data").rglob("*"):
        if pack.is_file():  # tamper with the offsite copy: restores cannot verify
            data = bytearray(pack.read_bytes())
            data[len(data) // 2] ^= 0xFF
            pack.write_bytes(bytes(data))
    with pytest.raises(JobFailed, match="failed"):
        drill(context, job_spec("drill", "drill"))
    value = scrape(lab, context.engine).get_sample_value
    assert value("bcp_drill_last_ok", {"tenant": "goka", "system": "goka-juki"}) == 0
    assert value("bcp_drill_overdue", {"tenant": "goka", "system": "goka-juki"}) == 1
