"""Drills started from the dashboard: run by failover's own ``run_drill`` in a background thread.

The HTTP request checks that the drill can start, records its run (``drill_runs``, the one
record of every drill wherever it was started) and audits who asked, then returns with the
run's id; the drill itself then takes that record over and writes its results and reports
exactly as ``bcpctl drill run`` does. So the dashboard and the API follow a drill — started,
running, finished — by reading the same record the command line and the scheduler write.
One drill at a time per process: two drills restoring side by side would measure each
other's load, not the RTO. A run whose process died reads as ``killed``; failover's own sweep
records it so and removes whatever sandboxes it left.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import Connection, Engine

from bcpctl.web.errors import Conflict, NotFound
from dc.audit import append, audited
from dc.clock import utcnow
from dc.errors import N_, BcpError, UsageError
from failover.context import RunContext
from failover.drill import run_drill
from failover.drillrequest import DrillRequest, check_startable
from failover.lifecycle import new_run_id
from failover.records import RunRecord, announce_run, end_unfinished, get_run, is_dead, list_runs

log = logging.getLogger("bcpctl.web")

#: Modes the dashboard may start; staff-loss needs escrow shares and switchover a second
#: person's token in hand, so those stay on the command line.
MODES = ("readiness", "isolated")


@dataclass(frozen=True)
class Job:
    """A drill run as the dashboard shows it; ``id`` is the run's id (``run_id`` too, for the API's readers)."""

    id: str
    kind: str
    mode: str
    tenant: str | None
    requested_by: str | None
    requested_at: datetime
    status: str
    run_id: str
    finished_at: datetime | None
    error: str | None


def job_of(run: RunRecord, now: datetime) -> Job:
    status = "killed" if run.status == "running" and is_dead(run, now) else run.status
    return Job(
        run.id,
        run.kind,
        run.mode,
        run.tenant,
        run.operator,
        run.declared_at,
        status,
        run.id,
        run.finished_at,
        run.error,
    )


class DrillJobs:
    def __init__(self, engine: Engine, context: Callable[[], RunContext]) -> None:
        self.engine = engine
        self.context = context
        self._running: threading.Thread | None = None
        self._guard = threading.Lock()

    def start(self, *, mode: str, tenant: str | None, requested_by: str, now: datetime) -> Job:
        if mode not in MODES:
            raise UsageError(
                N_("mode '{mode}' cannot be started here (allowed: {MODES}); use bcpctl drill run"),
                mode=mode,
                MODES=", ".join(MODES),
            )
        ctx = self.context()
        request = DrillRequest(mode=mode, tenant=tenant, operator=requested_by)
        check_startable(ctx, request)  # refused before anything is recorded
        with self._guard:
            if self._running is not None and self._running.is_alive():
                raise Conflict(N_("a drill started from the dashboard is still running; wait for it to finish"))
            run_id, _token = new_run_id(now)

            def record(conn: Connection) -> None:
                announce_run(
                    conn,
                    run_id,
                    kind="drill",
                    mode=mode,
                    consortium=ctx.config.consortium,
                    declared_at=now,
                    operator=requested_by,
                    tenant=tenant,
                )
                append(conn, actor=requested_by, action="drill.requested", subject=run_id,
                       details={"mode": mode, "tenant": tenant})  # fmt: skip

            audited(self.engine, record)
            thread = threading.Thread(
                target=self._run,
                args=(ctx, replace(request, run_id=run_id), run_id, requested_by),
                name=f"drill-{run_id}",
                daemon=True,
            )
            self._running = thread
            thread.start()
        # As recorded when the request was answered: the drill may already have moved on.
        return Job(run_id, "drill", mode, tenant, requested_by, now, "running", run_id, None, None)

    def _run(self, ctx: RunContext, request: DrillRequest, run_id: str, requested_by: str) -> None:
        status, error = "failed", None
        try:
            status = run_drill(ctx, request, handle_signals=False).status
        except BcpError as exc:
            error = exc.message
        except Exception as exc:  # a bug must still end the run's record, never leave it "running"
            log.exception("drill %s failed", run_id)
            error = f"internal error: {type(exc).__name__}"
        if error is not None:
            # Ends the record only if the drill never took it over (it failed before it began).
            end_unfinished(self.engine, run_id, "failed", error)
        details = {"run": run_id, "status": status, "error": error}
        audited(self.engine, lambda conn: append(conn, actor=requested_by, action="drill.finished", subject=run_id,
                                                 details=details))  # fmt: skip

    def wait(self, timeout: float | None = None) -> None:
        """Block until the running drill (if any) has finished; for shutdown and tests."""
        thread = self._running
        if thread is not None:
            thread.join(timeout)

    def get(self, job_id: str) -> Job:
        run = get_run(self.engine, job_id) if len(job_id) <= 64 else None
        if run is None or run.kind != "drill":
            raise NotFound(N_("no drill '{job_id}'"), job_id=job_id[:64])
        return job_of(run, utcnow())

    def list(self, limit: int = 20) -> list[Job]:
        now = utcnow()
        return [job_of(run, now) for run in list_runs(self.engine, kind="drill", limit=limit)]
