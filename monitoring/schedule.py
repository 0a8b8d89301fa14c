"""Which jobs ``bcpctl serve`` runs and when: pure functions of the configuration.

A schedule is either a duration (``30s``, ``15m``, ``4h``: run every so often) or a 5-field
cron expression (``30 2 * * *``). A system without a schedule of its own, and without a
consortium-wide ``schedules.backup``, is backed up every half of its RPO: the other half is
left for the backup itself and for replication, so the newest offsite copy stays within the
RPO the municipality's BIA set (ICT-BCP ステップ11). A system without an RPO is backed up
daily.

Interval jobs sit on a fixed grid (anchored at 2000-01-01 UTC) shifted by a stable offset
per job id, so restarts and leader changes keep the same run times and 132 systems with the
same RPO do not all start in the same second.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from dc.config import Consortium
from dc.duration import parse_duration
from dc.errors import N_
from failover.activesite import ActiveSite, stranded_systems
from monitoring.errors import ScheduleError

ANCHOR = datetime(2000, 1, 1, tzinfo=UTC)
DAY = 86400
#: the longest a run may start late and still run (APScheduler misfire_grace_time).
MAX_GRACE = 6 * 3600
#: rolling read-data: this many checks read every pack once (a week of nightly checks).
DEFAULT_CHECK_SLICES = 7


@dataclass(frozen=True)
class JobSpec:
    job_id: str
    kind: str
    trigger: BaseTrigger
    #: the nominal time between two runs, which sizes the misfire grace time
    interval: float
    site: str | None = None
    tenant: str | None = None
    system: str | None = None

    def required_system(self) -> str:
        """The system of a job that acts on one (a backup)."""
        if self.system is None:
            raise ValueError(f"job {self.job_id} names no system")
        return self.system

    @property
    def misfire_grace(self) -> int:
        """About one interval (a run later than that is superseded by the next one), at most 6 h."""
        return int(min(max(self.interval, 1), MAX_GRACE))


def backup_interval(rpo: int | None) -> int:
    """Seconds between backups of a system without an explicit schedule."""
    if rpo is None:
        return DAY
    return max(1, rpo // 2)


def control_interval(rpo: int, replicate_every: float | None) -> int | None:
    """Seconds between control-state shipments of their own, where replication runs but less often
    than the control-plane RPO asks (half of it, as for backups: the other half is left for the
    copy and its shipping). ``None`` when every replication cycle, which ships the control state
    too, comes often enough — or when replication is off: shipping is a replication.
    """
    every = max(1, rpo // 2)
    if replicate_every is None or replicate_every <= every:
        return None
    return every


def grid_offset(job_id: str, interval: int) -> int:
    digest = hashlib.sha256(job_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % max(1, interval)


def interval_trigger(job_id: str, seconds: int) -> IntervalTrigger:
    return IntervalTrigger(
        seconds=seconds, start_date=ANCHOR + timedelta(seconds=grid_offset(job_id, seconds)), timezone=UTC
    )


def parse_schedule(text: str, job_id: str, where: str, timezone: Any = None) -> tuple[BaseTrigger, float]:
    """A trigger and its nominal interval; ``where`` names the config field in errors."""
    try:
        seconds = parse_duration(text)
    except ValueError:
        seconds = None
    if seconds is not None:
        if seconds < 1:
            raise ScheduleError(N_("{where}: '{text}' is shorter than one second"), where=where, text=text)
        return interval_trigger(job_id, seconds), float(seconds)
    try:
        trigger = CronTrigger.from_crontab(text, timezone=timezone)
    except ValueError as exc:
        raise ScheduleError(
            N_("{where}: '{text}' is neither a duration (30s, 15m, 4h) nor a 5-field cron expression ({exc})"),
            where=where,
            text=text,
            exc=exc,
        ) from None
    return trigger, cron_interval(trigger)


def cron_interval(trigger: CronTrigger) -> float:
    """The smallest gap between the next few fire times after a fixed reference."""
    now = datetime(2025, 1, 1, tzinfo=UTC)
    times: list[datetime] = []
    previous = None
    for _ in range(4):
        fire = trigger.get_next_fire_time(previous, now)
        if fire is None:
            break
        times.append(fire)
        previous, now = fire, fire + timedelta(microseconds=1)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    return min(gaps) if gaps else float(DAY)


def plan_jobs(
    config: Consortium, kinds: Iterable[str], timezone: Any = None, active: ActiveSite | None = None
) -> list[JobSpec]:
    """Every job the configuration asks for, limited to the ``kinds`` this build can run.

    ``active`` is the site serving production (default: the configured primary). While it
    is an offsite site, backups go into its repository (a system bcpctl cannot locate there,
    a command source, is left out), checks cover it and the sites of its second copy, and
    replication runs from it to each of those.
    """
    available = set(kinds)
    jobs: list[JobSpec] = []
    schedules = config.schedules
    serving = active.site if active is not None else config.primary_site
    failed_over = active is not None and active.failed_over
    second = active.second_copy if active is not None and failed_over else ()
    stranded = set(stranded_systems(config, active)) if active is not None else set()
    if "backup" in available:
        for system_id, system in config.systems.items():
            if system_id in stranded:
                continue
            job_id = f"backup:{system_id}"
            if system.schedule:
                trigger, interval = parse_schedule(system.schedule, job_id, f"systems.{system_id}.schedule", timezone)
            elif schedules.backup:
                trigger, interval = parse_schedule(schedules.backup, job_id, "schedules.backup", timezone)
            else:
                seconds = backup_interval(system.rpo)
                trigger, interval = interval_trigger(job_id, seconds), float(seconds)
            jobs.append(JobSpec(job_id, "backup", trigger, interval, serving, system.tenant, system_id))
    checked = [s for s in config.sites if s == serving or s in second] if failed_over else config.sites
    if "check" in available and schedules.check:
        for site in checked:
            job_id = f"check:{site}"
            trigger, interval = parse_schedule(schedules.check, job_id, "schedules.check", timezone)
            jobs.append(JobSpec(job_id, "check", trigger, interval, site=site))
    replicate_every: float | None = None
    if "replicate" in available and schedules.replicate:
        for site in second if failed_over else config.offsite_sites:
            job_id = f"replicate:{site}"
            trigger, interval = parse_schedule(schedules.replicate, job_id, "schedules.replicate", timezone)
            jobs.append(JobSpec(job_id, "replicate", trigger, interval, site=site))
            replicate_every = interval
    if "control" in available and (every := control_interval(config.control_plane_rpo, replicate_every)):
        for site in second if failed_over else config.offsite_sites:
            job_id = f"control:{site}"
            jobs.append(JobSpec(job_id, "control", interval_trigger(job_id, every), float(every), site=site))
    for kind in ("health", "drill"):
        text = getattr(schedules, kind, None)
        if kind in available and text:
            trigger, interval = parse_schedule(text, kind, f"schedules.{kind}", timezone)
            jobs.append(JobSpec(kind, kind, trigger, interval))
    return jobs
