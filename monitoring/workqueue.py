"""Scheduled backups spread over several ``serve`` processes through Procrastinate.

One ``serve`` (the leader, :mod:`monitoring.controller`) keeps APScheduler's schedule and, in
queue mode, turns each due backup into a Procrastinate job in the shared PostgreSQL control
database; every ``serve`` (the leader too) runs a Procrastinate worker that takes jobs from it.
The engine gives what a scheduled run must have, and none of it is written here:

* each job is fetched by one worker (``SELECT … FOR UPDATE SKIP LOCKED`` in its SQL);
* ``lock=<system>``: jobs of one system run one at a time and in order, so a backup is never
  run twice concurrently, not even by a retry;
* workers heartbeat; a job whose worker stopped heartbeating for ``lease`` seconds (killed,
  host gone) is put back by :func:`retry_stalled` in any live worker, with ``attempts`` + 1.

The retried run may have committed its snapshot just before its worker died. So a retry
first looks at the system's newest snapshot in the repository (the local snapshot index,
synced: names listed, only new snapshots decrypted): if it carries the run's key, the run
is done. Every snapshot a queued run writes carries that key (tag ``run``), which is also
how the exactly-once test counts.

Why Procrastinate (and not PgQueuer or APScheduler's data store): see ``docs/scale.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

import procrastinate
import psycopg
from procrastinate import JobContext as QueueContext
from procrastinate.exceptions import AlreadyEnqueued, ConnectorException
from procrastinate.jobs import Job
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import make_url

from backup.jobs import SystemBackup, record_run, site_repository, system_request
from backup.run import run_backup
from backup.snapindex import SnapshotIndex
from dc.clock import utcnow
from dc.errors import N_, BcpError, UsageError
from monitoring.tasks import JobContext

log = logging.getLogger("bcpctl.workqueue")

QUEUE = "bcpctl-backups"
TASK = "bcpctl.backup"
#: the tag that names the scheduled run a snapshot belongs to
RUN_TAG = "run"
#: the tag that names the worker (its lease holder name) that wrote a queued run's snapshot
WORKER_TAG = "worker"


def queue_for(host: str | None) -> str:
    """The queue of the backups that run on ``host`` (a system's ``run_on``), or the shared one.

    Only a worker started for that host (``serve --queue --host NAME``) takes from a host's
    queue, so a database's data path stays on the machine the database runs on; the shared
    queue is taken by the workers started without ``--host``.
    """
    return QUEUE if host is None else f"{QUEUE}@{host}"


def conninfo(engine: Engine) -> str:
    """The libpq connection string of a PostgreSQL control database (queue mode needs one)."""
    url = engine.url
    if url.get_backend_name() != "postgresql":
        raise UsageError(N_("queue mode needs a PostgreSQL control database (control_db)"))
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def queue_app(engine: Engine) -> procrastinate.App:
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo(engine)))
    app.task(name=TASK, queue=QUEUE, pass_context=True)(_backup_task)
    return app


#: held while Procrastinate's schema is applied: serve processes started at the same instant
#: would otherwise all see no table and all apply it (the second fails on existing types)
_SCHEMA_LOCK = int.from_bytes(hashlib.sha256(b"bcpctl/procrastinate-schema").digest()[:8], "big", signed=True)


def install_schema(app: procrastinate.App, engine: Engine) -> bool:
    """Procrastinate's tables in the control database, once; True if they were created now."""
    if inspect(engine).has_table("procrastinate_jobs"):
        return False
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})
        if inspect(conn).has_table("procrastinate_jobs"):
            return False
        with app.open():
            app.schema_manager.apply_schema()
    return True


# -- the worker side -----------------------------------------------------------------------

#: the context of this process's worker (it follows the active site, so it is asked at each job)
_context: Callable[[], JobContext] | None = None
#: this process's name in the snapshots its worker writes
_worker_name: str | None = None
#: the host this process's worker takes the backups of (``serve --queue --host``)
_worker_host: str | None = None


def _backup_task(job: QueueContext, system: str, run_key: str) -> str:
    if _context is None:
        raise RuntimeError("no worker context installed")
    retried = bool(job.job and job.job.attempts)
    return backup_run(_context(), system, run_key, retried=retried, worker=_worker_name, host=_worker_host)


def backup_run(
    ctx: JobContext, system: str, run_key: str, *, retried: bool, worker: str | None = None, host: str | None = None
) -> str:
    """One queued backup of ``system``, tagged with its run (and the worker that ran it); a retry
    whose run already committed does nothing.

    ``host``: the worker's ``--host``. The queue was chosen from ``run_on`` when the job was
    queued; a job queued before ``run_on`` changed (or put in another queue) is refused here
    rather than run on a machine the system's data must not cross.
    """
    run_on = ctx.config.system(system).run_on
    if run_on != host:
        where = f"runs on {run_on}" if run_on else "runs on no host (the shared queue)"
        here = f"host {host}" if host else "the shared queue"
        raise BcpError(
            N_("queued backup of {system} refused by the worker of {here}: it {where} (run_on)"),
            system=system,
            here=here,
            where=where,
        )
    site = ctx.active.site if ctx.active is not None else ctx.config.primary_site
    request = system_request(ctx.config, system, ctx.config_dir)
    tags = {RUN_TAG: run_key} | ({WORKER_TAG: worker} if worker else {})
    request = replace(request, tags={**request.tags, **tags})
    with site_repository(ctx.config, site, ctx.config_dir, keyring=ctx.keyring) as repo:
        if retried:
            index = SnapshotIndex(repo)
            index.sync()
            newest = index.newest(system, request.source.display)
            if newest is not None and newest.tags.get(RUN_TAG) == run_key:
                log.info("run %s of %s was committed before its worker stopped", run_key, system)
                return f"already committed as {newest.short_id}"
        started = utcnow()
        try:
            result = run_backup(repo, request)
            outcome = SystemBackup(system, not result.errors, result, "; ".join(result.errors[:3]) or None)
        except BcpError as exc:
            result, outcome = None, SystemBackup(system, False, None, exc.message)
        record_run(ctx.engine, repo.backend.url, request, started, outcome)
    if not outcome.ok:
        raise BcpError(N_("backup of {system} failed: {error}"), system=system, error=outcome.error)
    return f"snapshot {result.snapshot_id[:8] if result else ''}"


def defer_backup(app: procrastinate.App, system: str, run_key: str, host: str | None = None) -> int | None:
    """Queue one scheduled run of ``system``'s backup (the leader's side) for the workers of
    ``host`` (the system's ``run_on``), else any worker; returns the job id.

    ``queueing_lock``: at most one run of a system waits in the queue. When workers are behind,
    a later run is coalesced into the waiting one (``None``), as APScheduler's ``coalesce``
    does for a local run, instead of piling up.
    """
    lock = f"backup:{system}"
    try:
        return app.configure_task(
            TASK, allow_unknown=False, queue=queue_for(host), lock=lock, queueing_lock=lock
        ).defer(system=system, run_key=run_key)
    except AlreadyEnqueued:
        return None


async def retry_stalled(app: procrastinate.App, lease: float) -> int:
    """Put back every job whose worker has not heartbeat for ``lease`` seconds; several workers
    may race for one job, and only one retry succeeds (see :func:`retry_one`).

    Every queue, not only this worker's: a host's worker that died has its job put back into
    that host's queue (the retry keeps the queue), for the host's next worker."""
    retried = 0
    for job in await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=lease, task_name=TASK):
        if await retry_one(app, job):
            retried += 1
            log.warning("job %s (%s) retried: its worker stopped heartbeating", job.id, job.task_kwargs.get("system"))
    return retried


async def retry_one(app: procrastinate.App, job: Job) -> bool:
    """Retry one stalled job; False when another worker's retry won the race for it.

    ``JobManager.retry_job`` runs ``procrastinate_retry_job``, which RAISEs (SQLSTATE P0001) when
    the job is neither ``doing`` nor ``failed`` any more; Procrastinate wraps it in ``ConnectorException`` with the
    psycopg error as ``__cause__``. Any other database error is not a lost race and propagates.
    """
    try:
        await app.job_manager.retry_job(job)
    except ConnectorException as exc:
        if not isinstance(exc.__cause__, psycopg.errors.RaiseException):
            raise
        log.debug("stalled job %s not retried here: %s", job.id, exc.__cause__)
        return False
    return True


@dataclass
class WorkerSettings:
    concurrency: int = 2
    #: seconds without a heartbeat after which a worker's jobs are retried by another
    lease: float = 15.0
    #: take the backups of systems that run on this host (``run_on``) only; None: the shared queue
    host: str | None = None
    #: written into the snapshots this worker takes (tag ``worker``)
    name: str | None = None


async def _work(app: procrastinate.App, settings: WorkerSettings, stop: threading.Event) -> None:
    async with app.open_async():
        worker = asyncio.create_task(
            app.run_worker_async(
                queues=[queue_for(settings.host)],
                concurrency=settings.concurrency,
                install_signal_handlers=False,
                update_heartbeat_interval=max(0.5, settings.lease / 5),
                stalled_worker_timeout=settings.lease,
                delete_jobs="never",
            )
        )
        while not stop.is_set() and not worker.done():
            try:
                await retry_stalled(app, settings.lease)
            except Exception as exc:
                # The worker outlives a database outage (psycopg_pool's PoolTimeout is not even a
                # ConnectorException): the next round looks again, and the log says why this one could not.
                log.warning("stalled jobs not checked: %s", exc)
            await asyncio.sleep(max(0.5, settings.lease / 3))
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker


def run_worker(
    engine: Engine, context: Callable[[], JobContext], settings: WorkerSettings, stop: threading.Event
) -> None:
    """Take queued backups until ``stop`` is set (blocking: run it in its own thread)."""
    global _context, _worker_name, _worker_host
    _context, _worker_name, _worker_host = context, settings.name, settings.host
    # Procrastinate logs every job start and end with its arguments at INFO: 1,452 systems' worth.
    logging.getLogger("procrastinate").setLevel(logging.WARNING)
    asyncio.run(_work(queue_app(engine), settings, stop))
