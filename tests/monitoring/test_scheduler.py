"""The APScheduler job store in the control database: restarts keep jobs, config changes replace them."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.interval import IntervalTrigger

from dc.state import open_state
from monitoring.runs import RunLedger, read_stats
from monitoring.schedule import JobSpec, interval_trigger
from monitoring.scheduler import build_scheduler, sync_jobs


def _specs(interval: int = 3600) -> list[JobSpec]:
    return [
        JobSpec(f"backup:sys-{i}", "backup", interval_trigger(f"backup:sys-{i}", interval), interval) for i in range(3)
    ]


def test_restart_keeps_stored_jobs_and_their_due_times(control_url: str) -> None:
    engine = open_state(control_url)
    first = build_scheduler(engine, 2, lambda _job: None)
    first.start(paused=True)
    report = sync_jobs(first, _specs())
    assert (report.added, report.kept, report.removed) == (3, 0, 0)
    due = {job.id: job.next_run_time for job in first.get_jobs()}
    first.shutdown(wait=False)

    second = build_scheduler(engine, 2, lambda _job: None)
    second.start(paused=True)
    try:
        report = sync_jobs(second, _specs())
        assert (report.added, report.kept, report.removed) == (0, 3, 0)
        assert {job.id: job.next_run_time for job in second.get_jobs()} == due
        job = second.get_job("backup:sys-0")
        assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, 3600)
        # A changed schedule replaces the job; a job gone from the config is removed.
        changed = _specs(600)[:2]
        report = sync_jobs(second, changed)
        assert (report.added, report.kept, report.removed) == (2, 0, 1)
        assert sorted(job.id for job in second.get_jobs()) == ["backup:sys-0", "backup:sys-1"]
        assert second.get_job("backup:sys-0").misfire_grace_time == 600
    finally:
        second.shutdown(wait=False)


def test_a_run_missed_beyond_the_grace_time_is_counted(control_url: str) -> None:
    engine = open_state(control_url)
    ledger = RunLedger(engine, "test", 30)
    scheduler = build_scheduler(engine, 1, ledger.count_missed)
    scheduler.start(paused=True)
    try:
        spec = JobSpec("health", "health", IntervalTrigger(hours=1, timezone=UTC), 1)
        sync_jobs(scheduler, [spec])
        # No leader for 90 minutes: even the newest due run (coalesced) is far past its 1 s grace.
        scheduler.modify_job("health", next_run_time=datetime.now(UTC) - timedelta(minutes=90))
        scheduler.resume()
        deadline = time.monotonic() + 5
        while not read_stats(engine):
            assert time.monotonic() < deadline, "missed run not counted"
            time.sleep(0.05)
        (stats,) = read_stats(engine)
        assert (stats.job_id, stats.missed, stats.runs) == ("health", 1, 0)
    finally:
        scheduler.shutdown(wait=False)
