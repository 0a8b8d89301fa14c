"""Running one scheduled job: claim it, do its task, record the outcome, log it.

APScheduler's SQLAlchemy job store pickles each job as a reference to a module-level
callable plus its arguments, so a stored job is just ``run_job(job_id)``. The live objects a
run needs (database engine, configuration, claims ledger) cannot be pickled; they belong to
the one :class:`JobRunner` of this process, installed by the controller when it becomes the
leader. A job whose id is no longer in the configuration does nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from dc.errors import BcpError
from monitoring.runs import Claim, RunLedger
from monitoring.schedule import JobSpec
from monitoring.tasks import TASKS, JobContext, Task

log = logging.getLogger("bcpctl.jobs")

_runner: JobRunner | None = None
_runner_lock = threading.Lock()


def install(runner: JobRunner | None) -> None:
    global _runner
    with _runner_lock:
        _runner = runner


def run_job(job_id: str) -> None:
    """The callable every stored job points at (``monitoring.jobs:run_job``)."""
    runner = _runner
    if runner is None:
        log.warning("job %s fired with no runner installed; skipped", job_id, extra={"job": job_id})
        return
    runner.run(job_id)


@dataclass
class InFlight:
    spec: JobSpec
    claim: Claim
    thread: str
    finished: bool = False


class JobRunner:
    def __init__(
        self, context: JobContext, ledger: RunLedger, specs: dict[str, JobSpec], tasks: dict[str, Task] | None = None
    ) -> None:
        self.context = context
        self.ledger = ledger
        self.specs = specs
        self.tasks = dict(TASKS if tasks is None else tasks)
        self._inflight: dict[str, InFlight] = {}
        self._lock = threading.Lock()
        self._cancelled = threading.Event()

    def _fields(self, spec: JobSpec, run_id: str | None = None) -> dict[str, object]:
        return {
            "job": spec.job_id,
            "kind": spec.kind,
            "run_id": run_id,
            "system": spec.system,
            "tenant": spec.tenant,
            "site": spec.site,
        }

    def run(self, job_id: str) -> str | None:
        """Run the job once unless another run holds its claim; returns the final status."""
        spec = self.specs.get(job_id)
        if spec is None or spec.kind not in self.tasks:
            log.warning("job %s is not in the configuration any more; skipped", job_id, extra={"job": job_id})
            return None
        if self._cancelled.is_set():
            self.ledger.record_not_started(job_id, spec.kind, "not started: the scheduler was stopping")
            log.info("job %s not started: the scheduler is stopping", job_id, extra=self._fields(spec))
            return "cancelled"
        claim = self.ledger.claim(job_id, spec.kind)
        if claim is None:
            log.warning("job %s skipped: another run holds its claim", job_id, extra=self._fields(spec))
            return "skipped"
        fields = self._fields(spec, claim.run_id)
        entry = InFlight(spec, claim, threading.current_thread().name)
        with self._lock:
            self._inflight[claim.run_id] = entry
        log.info("job %s started", job_id, extra=fields)
        started = time.monotonic()
        status, error, summary = "ok", None, ""
        try:
            summary = self.tasks[spec.kind](self.context, spec)
        except BcpError as exc:
            status, error = "failed", exc.message
        except Exception as exc:  # a bug in a task must be recorded, not kill the worker thread
            status, error = "failed", f"internal error: {type(exc).__name__}: {exc}"
            log.exception("job %s crashed", job_id, extra=fields)
        finally:
            with self._lock:
                self._inflight.pop(claim.run_id, None)
                already = entry.finished
                entry.finished = True
        if already:  # shutdown recorded it as cancelled while it ran
            return "cancelled"
        self.ledger.finish(claim, status, error)
        seconds = round(time.monotonic() - started, 3)
        if status == "ok":
            log.info("job %s ok: %s", job_id, summary, extra={**fields, "status": status, "seconds": seconds})
        else:
            log.error("job %s failed: %s", job_id, error, extra={**fields, "status": status, "seconds": seconds})
        return status

    def inflight(self) -> list[InFlight]:
        with self._lock:
            return list(self._inflight.values())

    def cancel_inflight(self, reason: str) -> int:
        """Record every still-running job as cancelled and release its claim (shutdown timed out)."""
        self._cancelled.set()
        with self._lock:
            pending = [entry for entry in self._inflight.values() if not entry.finished]
            for entry in pending:
                entry.finished = True
        for entry in pending:
            self.ledger.finish(entry.claim, "cancelled", reason)
            log.warning(
                "job %s cancelled: %s", entry.spec.job_id, reason, extra=self._fields(entry.spec, entry.claim.run_id)
            )
        return len(pending)

    def stop_new(self) -> None:
        """Runs that fire from now on return at once (shutdown in progress)."""
        self._cancelled.set()
