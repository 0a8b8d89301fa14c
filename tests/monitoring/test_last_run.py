"""The last-run gauges tell the truth about scheduled runs that fail before they begin.

A backup, replication, check or drill whose repository is gone fails while opening it, before
the subsystem records anything; the gauges must still fall to 0 (they read the recorded runs).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from backup.jobs import backup_systems, site_repository
from monitoring.tasks import JobContext, check, drill, replicate
from tests.monitoring.conftest import TWO_SYSTEMS, Lab, job_spec, scrape
from tests.monitoring.serving import ServeProcess
from tests.monitoring.test_serve import samples

GOKA = (("site", "primary"), ("system", "goka-juki"), ("tenant", "goka"))
NAKA = (("site", "primary"), ("system", "naka-juki"), ("tenant", "naka"))


def _all_ok(lab: Lab) -> JobContext:
    """Every kind of job once, successfully, in-process."""
    engine = lab.engine()
    config = lab.config
    with site_repository(config, "primary", lab.root) as repo:
        assert all(o.ok for o in backup_systems(config, repo, None, state=engine, config_dir=lab.root))
    context = JobContext(engine, config, lab.root)
    replicate(context, job_spec("replicate:offsite", "replicate", site="offsite"))
    check(context, job_spec("check:primary", "check", site="primary"))
    assert "passed" in drill(context, job_spec("drill", "drill"))
    return context


@pytest.mark.slow
def test_scheduled_runs_against_a_missing_repository_set_every_last_run_gauge_to_0(
    lab_factory: Callable[..., Lab], tmp_path: Path
) -> None:
    lab = lab_factory(TWO_SYSTEMS)
    lab.raw["sites"]["offsite"]["drill_dir"] = str(lab.root / "offsite" / "drill")
    lab.write()
    context = _all_ok(lab)
    value = scrape(lab, context.engine).get_sample_value
    goka = {"site": "primary", "tenant": "goka", "system": "goka-juki"}
    assert value("bcp_backup_last_run_ok", goka) == 1
    assert value("bcp_replication_last_run_ok", {"site": "offsite"}) == 1
    assert value("bcp_repository_check_ok", {"site": "primary"}) == 1
    assert value("bcp_drill_last_ok", {"tenant": "goka", "system": "goka-juki"}) == 1

    # Both repositories disappear (a storage mount lost, a bucket deleted): every job fails while opening.
    for site in ("primary", "offsite"):
        shutil.move(lab.root / site / "repo", lab.root / site / "repo.gone")
    lab.raw["schedules"] = {"backup": "2s", "replicate": "2s", "check": "2s", "drill": "3s", "health": None}
    lab.write()
    wanted = {"backup:goka-juki", "backup:naka-juki", "replicate:offsite", "check:primary", "drill"}
    with ServeProcess(lab.config_path, tmp_path / "serve.log", "--tick", "0.2") as serve:
        serve.wait_role("leader")
        deadline = time.monotonic() + 120
        while True:
            text = serve.metrics()
            failures = {dict(k)["job_id"]: v for k, v in samples(text, "bcp_scheduler_job_failures_total").items()}
            if all(failures.get(job, 0) >= 1 for job in wanted):
                break
            assert time.monotonic() < deadline, f"{failures}\n{serve.log_text()[-2000:]}"
            time.sleep(0.3)
        text = serve.metrics()
        code, _ = serve.stop()
    assert code == 0
    assert "does not exist" in serve.log_text()
    backups = samples(text, "bcp_backup_last_run_ok")
    assert backups[GOKA] == backups[NAKA] == 0, backups
    assert samples(text, "bcp_replication_last_run_ok") == {(("site", "offsite"),): 0.0}
    assert samples(text, "bcp_repository_check_ok")[(("site", "primary"),)] == 0
    drills = samples(text, "bcp_drill_last_ok")
    assert set(drills.values()) == {0.0} and len(drills) == 2, drills
    # The last successes stay what they were: a failure is no success, and no success is lost.
    assert len(samples(text, "bcp_backup_last_success_timestamp_seconds")) == 2
    assert len(samples(text, "bcp_replication_last_success_timestamp_seconds")) == 1
