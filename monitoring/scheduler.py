"""The APScheduler 3.x scheduler of the leader: job store in the control database.

Settings follow the APScheduler user guide and the downstream incidents in the research
notes: ``coalesce=True`` (a backlog after downtime runs once, not N times), ``max_instances=1``
(a slow backup is never started twice), ``misfire_grace_time`` of about one interval per job
(the 3.x default of 1 s silently skips runs on a busy host), fixed job ids with
``replace_existing`` (a restart must not add copies). A stored job whose trigger is unchanged
is kept as it is, so a run that was due while no leader was alive still fires (coalesced)
after a takeover instead of being recomputed away. Missed runs are counted per job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine

from dc.errors import N_, Message
from monitoring.schedule import JobSpec

log = logging.getLogger("bcpctl.scheduler")

JOB_FUNC = "monitoring.jobs:run_job"
JOBSTORE_TABLE = "apscheduler_jobs"


@dataclass(frozen=True)
class SyncReport:
    added: int
    kept: int
    removed: int


def build_scheduler(engine: Engine, workers: int, on_missed: Callable[[str], None]) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename=JOBSTORE_TABLE)},
        executors={"default": ThreadPoolExecutor(max_workers=workers)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
    )

    def missed(event: JobExecutionEvent) -> None:
        why = (
            Message(N_("previous run still going"))
            if event.code == EVENT_JOB_MAX_INSTANCES
            else Message(N_("too late to run"))
        )
        log.warning("job %s missed a run: %s", event.job_id, why, extra={"job": event.job_id})
        try:
            on_missed(event.job_id)
        except Exception as exc:  # counting must never break the scheduler thread
            log.warning("could not count missed run of %s: %s", event.job_id, type(exc).__name__)

    scheduler.add_listener(missed, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
    return scheduler


def sync_jobs(scheduler: BackgroundScheduler, specs: Iterable[JobSpec]) -> SyncReport:
    """Make the job store hold exactly ``specs`` (call on a started, paused scheduler)."""
    wanted = {spec.job_id: spec for spec in specs}
    removed = 0
    for job in scheduler.get_jobs():
        if job.id not in wanted:
            scheduler.remove_job(job.id)
            removed += 1
    added = kept = 0
    for spec in wanted.values():
        existing = scheduler.get_job(spec.job_id)
        if (
            existing is not None
            and existing.func_ref == JOB_FUNC
            and tuple(existing.args) == (spec.job_id,)
            and repr(existing.trigger) == repr(spec.trigger)
        ):
            if existing.misfire_grace_time != spec.misfire_grace:
                existing.modify(misfire_grace_time=spec.misfire_grace)
            kept += 1
            continue
        scheduler.add_job(
            JOB_FUNC,
            trigger=spec.trigger,
            args=[spec.job_id],
            id=spec.job_id,
            name=spec.job_id,
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=spec.misfire_grace,
        )
        added += 1
    return SyncReport(added, kept, removed)
