"""Leader or standby: the loop that holds the lease and runs the scheduler while it does.

Every ``tick`` the controller heartbeats the claims of its running jobs, and either renews
its lease (leader) or tries to take it (standby). Becoming leader: record a term, release
claims of processes that stopped heartbeating (their runs are recorded as abandoned), install
the job runner, start the scheduler paused, make the job store match the configuration, then
resume. Losing the lease stops the scheduler at once; jobs already running finish and keep
their claims alive, so the next leader cannot start them again meanwhile.

Takeover bound after the leader dies: PostgreSQL — one tick after its session ends (at once
for a killed process, ~30 s for a vanished host); SQLite — ``lease_ttl`` plus one tick.

The jobs follow the active site (:mod:`failover.activesite`): the leader reads it from the
run records at every tick, and when a failover or failback changes it, re-plans — backups
of what runs there into its repository, replication to where its second copy goes — and
makes the job store match, without a restart.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Literal

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine, text

from backup.keyring import KeyRing
from dc.config import Consortium
from failover.activesite import ActiveSite, active_site, serving_config
from monitoring import jobs
from monitoring.lease import Lease, begin_term, end_term, open_lease
from monitoring.runs import RunLedger, prune_runs
from monitoring.schedule import DEFAULT_CHECK_SLICES, JobSpec, plan_jobs
from monitoring.scheduler import build_scheduler, sync_jobs
from monitoring.tasks import TASKS, JobContext, Task

log = logging.getLogger("bcpctl.controller")

#: run records older than this are dropped hourly (the per-job counters are kept for ever)
RUN_RECORDS_KEPT = timedelta(days=30)

Role = Literal["starting", "standby", "leader", "stopping", "stopped"]


@dataclass(frozen=True)
class ServiceSettings:
    #: how long a lease (SQLite) or a job claim outlives its holder's last renewal
    lease_ttl: float = 15.0
    #: how often the lease is renewed or tried and claims are heartbeated
    tick: float = 1.0
    workers: int = 4
    #: how long SIGTERM waits for running jobs before recording them as cancelled
    stop_timeout: float = 60.0
    check_slices: int = DEFAULT_CHECK_SLICES
    probe_timeout: float = 3.0
    #: queue mode (:mod:`monitoring.workqueue`): the leader queues backups, every process runs them
    queue: bool = False
    #: queue mode: this process's worker takes only the backups of systems that run on this host
    queue_host: str | None = None
    #: seconds between renderings of /metrics (0: rendered at each scrape)
    metrics_refresh: float = 0.0


@dataclass
class Status:
    role: Role
    holder: str
    leader_since: float | None = None
    jobs: int = 0
    database_ok: bool = True


def new_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Controller:
    def __init__(
        self,
        engine: Engine,
        config: Consortium,
        config_dir: Path,
        settings: ServiceSettings,
        tasks: dict[str, Task] | None = None,
    ) -> None:
        self.engine = engine
        self.config = config
        self.settings = settings
        self.holder = new_holder()
        self.config_dir = config_dir
        self.tasks = dict(TASKS if tasks is None else tasks)
        self._queue_stop = threading.Event()
        self._queue_thread: threading.Thread | None = None
        if settings.queue:
            self._open_queue()
        self.active: ActiveSite | None = None
        #: each repository unlocked once while this process lives, wiped at shutdown
        self.keyring = KeyRing()
        self.specs: dict[str, JobSpec] = {}
        self.context = JobContext(engine, config, config_dir)
        self._plan(self._read_active())
        self.ledger = RunLedger(engine, self.holder, claim_ttl=settings.lease_ttl)
        self.lease: Lease = open_lease(engine, self.holder, settings.lease_ttl)
        self.role: Role = "starting"
        self.leader_since: float | None = None
        #: how many times this process became the leader
        self.terms = 0
        self.database_ok = True
        self._stop = threading.Event()
        self._scheduler: BackgroundScheduler | None = None
        self._runner: jobs.JobRunner | None = None
        self._term: int | None = None
        self._tick = min(settings.tick, settings.lease_ttl / 3)
        self._next_prune = 0.0

    # -- queue mode -------------------------------------------------------------------------

    def _open_queue(self) -> None:
        from monitoring import workqueue

        app = workqueue.queue_app(self.engine)
        workqueue.install_schema(app, self.engine)
        # The scheduler runs jobs on several threads and the App holds one connection pool:
        # two threads opening and closing it at once closed it under each other (AppNotOpen,
        # PoolTimeout, a defer hung until its pool timed out), so a defer has the App alone.
        opened = threading.Lock()

        def queue_backup(ctx: JobContext, spec: JobSpec) -> str:
            run_key = f"{spec.job_id}@{uuid.uuid4().hex[:12]}"
            system = spec.required_system()
            host = ctx.config.system(system).run_on
            with opened, app.open():
                job = workqueue.defer_backup(app, system, run_key, host)
            where = f" for host {host}" if host else ""
            return f"queued as job {job}{where} ({run_key})" if job is not None else "coalesced into the queued run"

        self.tasks["backup"] = queue_backup
        settings = workqueue.WorkerSettings(
            concurrency=self.settings.workers,
            lease=self.settings.lease_ttl,
            host=self.settings.queue_host,
            name=self.holder,
        )
        self._queue_thread = threading.Thread(
            target=workqueue.run_worker,
            args=(self.engine, lambda: self.context, settings, self._queue_stop),
            name="bcp-queue-worker",
            daemon=True,
        )

    # -- the plan follows the active site ---------------------------------------------------

    def _read_active(self) -> ActiveSite | None:
        try:
            return active_site(self.config, self.engine)
        except Exception as exc:  # the database is away: the leader reads it again at its first tick
            log.warning("active site not read: %s", type(exc).__name__)
            return None

    def _plan(self, active: ActiveSite | None) -> None:
        """Jobs and their context for ``active`` (``None``: the configured primary)."""
        serving = serving_config(self.config, active, self.config_dir) if active is not None else self.config
        self.active = active
        self.specs = {spec.job_id: spec for spec in plan_jobs(self.config, self.tasks, active=active)}
        self.context = JobContext(
            self.engine,
            serving,
            self.config_dir,
            check_slices=self.settings.check_slices,
            probe_timeout=self.settings.probe_timeout,
            active=active,
            keyring=self.keyring,
        )

    def _follow_active_site(self) -> None:
        active = active_site(self.config, self.engine)
        if active == self.active:
            return
        self._plan(active)
        if self._runner is not None:
            self._runner.specs, self._runner.context = self.specs, self.context
        report = sync_jobs(self._scheduler, self.specs.values()) if self._scheduler is not None else None
        log.warning(
            "production runs at %s%s: %d jobs (%s), second copy to %s",
            active.site,
            f" since {active.since.isoformat()}" if active.since else "",
            len(self.specs),
            f"{report.added} added, {report.removed} removed" if report else "not scheduling",
            ", ".join(active.second_copy) or "nowhere",
            extra={"role": self.role},
        )

    # -- status ----------------------------------------------------------------------------

    def is_leader(self) -> bool:
        return self.role == "leader"

    def status(self) -> Status:
        return Status(self.role, self.holder, self.leader_since, len(self.specs), self.database_ok)

    def database_reachable(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    # -- the loop --------------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()

    def run(self) -> int:
        """Lead or stand by until :meth:`request_stop`; returns how many jobs were cancelled."""
        self.role = "standby"
        if self._queue_thread is not None:
            self._queue_thread.start()
        log.info("scheduler %s standing by for the lease (%d jobs planned)", self.holder, len(self.specs))
        while not self._stop.is_set():
            self._step()
            self._stop.wait(self._tick)
        return self._shutdown()

    def _sign_pending(self, *, all_of_them: bool = False) -> None:
        """Sign the manifests whose batching window is over (every unsigned one at shutdown)."""
        from backup.jobs import site_repository
        from storage.url import repository_url_key

        due = self.keyring.unsigned(due_only=not all_of_them)
        for site, spec in self.config.sites.items():
            if due and repository_url_key(spec.repository) in due:
                try:
                    with site_repository(self.config, site, self.config_dir, keyring=self.keyring, sign_now=True):
                        pass
                except Exception as exc:  # the next tick tries again; the snapshots are committed
                    log.warning("could not sign the manifest of %s: %s", site, type(exc).__name__)

    def _step(self) -> None:
        try:
            self.ledger.heartbeat()
            self._sign_pending()
            if self.role == "leader":
                if not self.lease.renew():
                    self._step_down("lease lost")
                    return
                self._follow_active_site()
                if time.monotonic() >= self._next_prune:
                    self._next_prune = time.monotonic() + 3600
                    prune_runs(self.engine, RUN_RECORDS_KEPT)
            elif self.lease.try_acquire():
                self._take_over()
            self.database_ok = True
        except Exception as exc:  # the control database is away: keep trying, never crash
            self.database_ok = False
            log.warning("control database unavailable: %s", type(exc).__name__)
            if self.role == "leader" and not self.lease.renew():
                self._step_down("control database unavailable")

    def _take_over(self) -> None:
        try:
            self._term = begin_term(self.engine, self.holder)
            self._plan(active_site(self.config, self.engine))
            swept = self.ledger.sweep_stale()
            runner = jobs.JobRunner(self.context, self.ledger, self.specs, self.tasks)
            scheduler = build_scheduler(self.engine, self.settings.workers, self.ledger.count_missed)
            jobs.install(runner)
            scheduler.start(paused=True)
            report = sync_jobs(scheduler, self.specs.values())
            scheduler.resume()
        except Exception:
            log.exception("could not start the scheduler; giving the lease back")
            jobs.install(None)
            self.lease.release()
            raise
        self._scheduler, self._runner = scheduler, runner
        self.role, self.leader_since = "leader", time.time()
        self.terms += 1
        log.info(
            "became the active scheduler: %d jobs (%d added, %d kept, %d removed), %d stale claims released",
            len(self.specs),
            report.added,
            report.kept,
            report.removed,
            swept,
            extra={"role": "leader"},
        )

    def _stop_scheduler(self) -> None:
        # The runner stays installed: runs already queued in the executor come to it and are
        # recorded as not started, instead of vanishing.
        if self._runner is not None:
            self._runner.stop_new()
        if self._scheduler is not None:
            try:
                self._scheduler.shutdown(wait=False)
            except Exception as exc:
                log.warning("scheduler shutdown: %s", type(exc).__name__)
            self._scheduler = None

    def _step_down(self, reason: str) -> None:
        log.error("stopped scheduling: %s", reason, extra={"role": "standby"})
        self._stop_scheduler()
        self.role, self.leader_since = "standby", None
        if self._term is not None:
            # If the database is away the term stays open; the next leader's sweep tells the story.
            with contextlib.suppress(Exception):
                end_term(self.engine, self._term, reason)
            self._term = None

    def _shutdown(self) -> int:
        was_leader = self.role == "leader"
        self.role = "stopping"
        self._stop_scheduler()
        runner = self._runner
        cancelled = 0
        if runner is not None:
            deadline = time.monotonic() + self.settings.stop_timeout
            while runner.inflight() and time.monotonic() < deadline:
                with contextlib.suppress(Exception):
                    self.ledger.heartbeat()
                time.sleep(min(0.2, self._tick))
            if runner.inflight():
                cancelled = runner.cancel_inflight("bcpctl serve was stopped before the job finished")
        jobs.install(None)
        if self._queue_thread is not None and self._queue_thread.ident is not None:
            self._queue_stop.set()
            self._queue_thread.join(self.settings.stop_timeout)
        self._sign_pending(all_of_them=True)
        self.keyring.close()
        if was_leader and self._term is not None:
            end_term(self.engine, self._term, "stopped")
        try:
            self.lease.release()
        except Exception as exc:
            log.warning("could not release the lease: %s", type(exc).__name__)
        self.role = "stopped"
        log.info("scheduler %s stopped (%d running jobs cancelled)", self.holder, cancelled)
        return cancelled
