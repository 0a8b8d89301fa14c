"""Drills started from the dashboard: run by failover's own ``run_drill`` in a background thread.

The HTTP request only records the job (and audits who asked), then returns; the drill itself
writes its run, per-system results and reports exactly as ``bcpctl drill run`` does. One
drill at a time per process: two drills restoring side by side would measure each other's
load, not the RTO. A job whose process died is shown as ``interrupted``; failover's own
sweep removes whatever sandboxes its drill left.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Column, Connection, Engine, Integer, String, Table, Text, insert, select, update

from bcpctl.web.errors import Conflict, NotFound
from dc.clock import utcnow
from dc.errors import BcpError, UsageError
from dc.state import UtcDateTime, metadata
from failover.drill import DrillRequest, run_drill
from failover.lifecycle import RunContext
from failover.plan import select_systems
from victim_support import audit

log = logging.getLogger("bcpctl.web")

#: Modes the dashboard may start; staff-loss needs escrow shares and switchover a second
#: person's token in hand, so those stay on the command line.
MODES = ("readiness", "isolated")

web_jobs = Table(
    "web_jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("mode", String(24), nullable=False),
    Column("tenant", String(64)),
    Column("requested_by", Text, nullable=False),
    Column("requested_at", UtcDateTime, nullable=False),
    Column("status", String(16), nullable=False),
    Column("run_id", String(48)),
    Column("finished_at", UtcDateTime),
    Column("error", Text),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
)


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    mode: str
    tenant: str | None
    requested_by: str
    requested_at: str
    status: str
    run_id: str | None
    finished_at: str | None
    error: str | None


class DrillJobs:
    def __init__(self, engine: Engine, context: Callable[[], RunContext]) -> None:
        self.engine = engine
        self.context = context
        self._running: threading.Thread | None = None
        self._guard = threading.Lock()

    def start(self, *, mode: str, tenant: str | None, requested_by: str, now: datetime) -> Job:
        if mode not in MODES:
            raise UsageError(
                f"mode '{mode}' cannot be started here (allowed: {', '.join(MODES)}); use bcpctl drill run"
            )
        ctx = self.context()
        select_systems(ctx.config, tenant=tenant, systems=())  # unknown tenant: refused before anything is recorded
        with self._guard:
            if self._running is not None and self._running.is_alive():
                raise Conflict("a drill started from the dashboard is still running; wait for it to finish")
            job = Job(
                f"job-{now:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}",
                "drill",
                mode,
                tenant,
                requested_by,
                now.astimezone(UTC).isoformat(),
                "running",
                None,
                None,
                None,
            )

            def record(conn: Connection) -> None:
                row = {**vars(job), "requested_at": now}
                conn.execute(insert(web_jobs).values(**row, host=socket.gethostname(), pid=os.getpid()))
                audit.append(
                    conn,
                    actor=requested_by,
                    action="drill.requested",
                    subject=job.id,
                    details={"mode": mode, "tenant": tenant},
                )

            audit.audited(self.engine, record)
            thread = threading.Thread(target=self._run, args=(ctx, job), name=f"drill-{job.id}", daemon=True)
            self._running = thread
            thread.start()
        return job

    def _run(self, ctx: RunContext, job: Job) -> None:
        run_id, status, error = None, "error", None
        try:
            result = run_drill(ctx, DrillRequest(mode=job.mode, tenant=job.tenant), handle_signals=False)
            run_id, status = result.id, result.status
        except BcpError as exc:
            error = exc.message
        except Exception as exc:  # a bug must still end the job's record, never leave it "running"
            log.exception("drill job %s failed", job.id)
            error = f"internal error: {type(exc).__name__}"

        def record(conn: Connection) -> None:
            conn.execute(
                update(web_jobs)
                .where(web_jobs.c.id == job.id)
                .values(status=status, run_id=run_id, error=error, finished_at=utcnow())
            )
            audit.append(
                conn,
                actor=job.requested_by,
                action="drill.finished",
                subject=job.id,
                details={"run": run_id, "status": status, "error": error},
            )

        audit.audited(self.engine, record)

    def wait(self, timeout: float | None = None) -> None:
        """Block until the running drill (if any) has finished; for shutdown and tests."""
        thread = self._running
        if thread is not None:
            thread.join(timeout)

    def get(self, job_id: str) -> Job:
        with self.engine.connect() as conn:
            row = conn.execute(select(web_jobs).where(web_jobs.c.id == job_id)).first()
        if row is None:
            raise NotFound(f"no drill job '{job_id}'")
        return _job(row)

    def list(self, limit: int = 20) -> list[Job]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(web_jobs).order_by(web_jobs.c.requested_at.desc()).limit(limit)).all()
        return [_job(row) for row in rows]


def _job(row: object) -> Job:
    r = row._mapping  # type: ignore[attr-defined]
    status, finished = r["status"], r["finished_at"]
    if status == "running" and r["host"] == socket.gethostname() and not _alive(r["pid"]):
        status = "interrupted"
    return Job(
        r["id"],
        r["kind"],
        r["mode"],
        r["tenant"],
        r["requested_by"],
        r["requested_at"].isoformat(),
        status,
        r["run_id"],
        finished.isoformat() if finished is not None else None,
        r["error"],
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
