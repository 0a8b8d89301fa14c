"""Scheduled job runs in the control database: run ids, claims and per-job statistics.

APScheduler 3.x guarantees ``max_instances=1`` only inside one process, and its FAQ warns
that a job store shared by two schedulers runs jobs twice. The leader lease keeps one
scheduler per control database; claims are the second fence: a run first claims its job id
(a primary-key row), heartbeats the claim while it works and deletes it at the end. A claim
whose heartbeat stopped (its process died) goes stale after ``claim_ttl`` and may be taken
over — its run is then recorded as abandoned — so a killed leader blocks a job for at most
that long, and two runs of one job never overlap.

``job_stats`` keeps cumulative counters (runs, failures, missed), so the exported counters
never go backwards when old ``job_runs`` rows are pruned.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Float,
    Integer,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)

from dc.clock import utcnow
from dc.state import UtcDateTime, metadata
from monitoring.dialect import insert_ignore

job_runs = Table(
    "scheduler_job_runs",
    metadata,
    Column("run_id", String(36), primary_key=True),
    Column("job_id", String(200), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("holder", String(200), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime),
    #: running, ok, failed, skipped (claim held elsewhere), abandoned (holder died), cancelled (shutdown)
    Column("status", String(16), nullable=False),
    Column("error", Text),
)

job_claims = Table(
    "scheduler_job_claims",
    metadata,
    Column("job_id", String(200), primary_key=True),
    Column("run_id", String(36), nullable=False),
    Column("holder", String(200), nullable=False),
    Column("claimed_at", UtcDateTime, nullable=False),
    Column("heartbeat_at", UtcDateTime, nullable=False),
)

job_stats = Table(
    "scheduler_job_stats",
    metadata,
    Column("job_id", String(200), primary_key=True),
    Column("runs", Integer, nullable=False, default=0),
    Column("failures", Integer, nullable=False, default=0),
    Column("missed", Integer, nullable=False, default=0),
    Column("consecutive_failures", Integer, nullable=False, default=0),
    Column("last_success_at", UtcDateTime),
    Column("last_finished_at", UtcDateTime),
    Column("last_seconds", Float),
)

FINAL = ("ok", "failed", "skipped", "abandoned", "cancelled")


@dataclass(frozen=True)
class Claim:
    job_id: str
    run_id: str
    started_at: datetime


@dataclass(frozen=True)
class JobStats:
    job_id: str
    runs: int
    failures: int
    missed: int
    consecutive_failures: int
    last_success_at: datetime | None
    last_seconds: float | None


class RunLedger:
    """Claims, run records and statistics for one process (``holder``)."""

    def __init__(self, engine: Engine, holder: str, claim_ttl: float) -> None:
        self.engine = engine
        self.holder = holder
        self.claim_ttl = claim_ttl

    def claim(self, job_id: str, kind: str) -> Claim | None:
        """Start a run of ``job_id``: its claim and run record, or ``None`` if a live run holds it.

        A stale claim (heartbeat older than ``claim_ttl``) is taken over in one compare-and-set
        UPDATE on its old run id, so two processes racing for it cannot both win. The INSERT
        comes first so that on SQLite the transaction holds the write lock from its start.
        """
        now = utcnow()
        run_id = str(uuid.uuid4())
        with self.engine.begin() as conn:
            won = insert_ignore(
                conn, job_claims, job_id=job_id, run_id=run_id, holder=self.holder, claimed_at=now, heartbeat_at=now
            )
            if not won:
                current = conn.execute(select(job_claims).where(job_claims.c.job_id == job_id)).first()
                if current is not None and current.heartbeat_at < now - timedelta(seconds=self.claim_ttl):
                    won = (
                        conn.execute(
                            update(job_claims)
                            .where(job_claims.c.job_id == job_id, job_claims.c.run_id == current.run_id)
                            .values(run_id=run_id, holder=self.holder, claimed_at=now, heartbeat_at=now)
                        ).rowcount
                        == 1
                    )
                    if won:
                        self._abandon(conn, current.run_id, current.heartbeat_at)
                if not won:
                    self._record_skip(conn, job_id, kind, now)
                    return None
            conn.execute(
                insert(job_runs).values(
                    run_id=run_id, job_id=job_id, kind=kind, holder=self.holder, started_at=now, status="running"
                )
            )
        return Claim(job_id, run_id, now)

    def _record_skip(self, conn: Connection, job_id: str, kind: str, now: datetime) -> None:
        self._record_unstarted(conn, job_id, kind, now, "skipped", "another run of this job holds its claim")

    def _record_unstarted(
        self, conn: Connection, job_id: str, kind: str, now: datetime, status: str, reason: str
    ) -> None:
        conn.execute(
            insert(job_runs).values(
                run_id=str(uuid.uuid4()),
                job_id=job_id,
                kind=kind,
                holder=self.holder,
                started_at=now,
                finished_at=now,
                status=status,
                error=reason,
            )
        )

    def record_not_started(self, job_id: str, kind: str, reason: str) -> None:
        """A run that was due and queued but never began because the service was stopping.

        Recorded as cancelled, not counted as missed: a restart is not a scheduling failure,
        and the missed-runs alert must not fire after every deployment.
        """
        with self.engine.begin() as conn:
            self._record_unstarted(conn, job_id, kind, utcnow(), "cancelled", reason)

    @staticmethod
    def _abandon(conn: Connection, run_id: str, last_seen: datetime | None) -> None:
        # The dead holder was last known alive at its final heartbeat: that is the honest end.
        conn.execute(
            update(job_runs)
            .where(job_runs.c.run_id == run_id, job_runs.c.status == "running")
            .values(status="abandoned", finished_at=last_seen, error="its process stopped heartbeating")
        )

    def heartbeat(self) -> int:
        """Refresh every claim this process holds; returns how many it holds."""
        with self.engine.begin() as conn:
            return conn.execute(
                update(job_claims).where(job_claims.c.holder == self.holder).values(heartbeat_at=utcnow())
            ).rowcount

    def finish(self, claim: Claim, status: str, error: str | None = None) -> float:
        """Record the run's outcome, release its claim and update the job's counters."""
        assert status in FINAL
        now = utcnow()
        seconds = (now - claim.started_at).total_seconds()
        with self.engine.begin() as conn:
            # Only a run still recorded as running is ours to finish: a run another leader
            # recorded as abandoned keeps that verdict (and its claim belongs to the new run).
            mine = conn.execute(
                update(job_runs)
                .where(job_runs.c.run_id == claim.run_id, job_runs.c.status == "running")
                .values(status=status, finished_at=now, error=error[:2000] if error else None)
            ).rowcount
            conn.execute(delete(job_claims).where(job_claims.c.run_id == claim.run_id))
            if mine == 1 and status in ("ok", "failed"):
                self._count(conn, claim.job_id, status == "ok", now, seconds)
        return seconds

    def _count(self, conn: Connection, job_id: str, ok: bool, now: datetime, seconds: float) -> None:
        self._ensure_stats_row(conn, job_id)
        values: dict[str, object] = {
            "runs": job_stats.c.runs + 1,
            "last_finished_at": now,
            "last_seconds": seconds,
        }
        if ok:
            values.update(consecutive_failures=0, last_success_at=now)
        else:
            values.update(failures=job_stats.c.failures + 1, consecutive_failures=job_stats.c.consecutive_failures + 1)
        conn.execute(update(job_stats).where(job_stats.c.job_id == job_id).values(**values))

    @staticmethod
    def _ensure_stats_row(conn: Connection, job_id: str) -> None:
        insert_ignore(conn, job_stats, job_id=job_id, runs=0, failures=0, missed=0, consecutive_failures=0)

    def count_missed(self, job_id: str) -> None:
        """A scheduled run that never started (misfire, or the previous run still going)."""
        with self.engine.begin() as conn:
            self._ensure_stats_row(conn, job_id)
            conn.execute(update(job_stats).where(job_stats.c.job_id == job_id).values(missed=job_stats.c.missed + 1))

    def sweep_stale(self) -> int:
        """Release claims whose holders stopped heartbeating, recording their runs as abandoned."""
        cutoff = utcnow() - timedelta(seconds=self.claim_ttl)
        swept = 0
        with self.engine.begin() as conn:
            for row in conn.execute(select(job_claims)).all():
                if row.heartbeat_at >= cutoff:
                    continue
                gone = conn.execute(
                    delete(job_claims).where(job_claims.c.job_id == row.job_id, job_claims.c.run_id == row.run_id)
                )
                if gone.rowcount == 1:
                    self._abandon(conn, row.run_id, row.heartbeat_at)
                    swept += 1
        return swept


def read_stats(engine: Engine) -> list[JobStats]:
    with engine.connect() as conn:
        rows = conn.execute(select(job_stats).order_by(job_stats.c.job_id)).all()
    return [
        JobStats(
            row.job_id,
            row.runs,
            row.failures,
            row.missed,
            row.consecutive_failures,
            row.last_success_at,
            row.last_seconds,
        )
        for row in rows
    ]


def prune_runs(engine: Engine, older_than: timedelta) -> int:
    """Drop finished run records older than ``older_than`` (the counters in job_stats stay)."""
    with engine.begin() as conn:
        return conn.execute(
            delete(job_runs).where(job_runs.c.status != "running", job_runs.c.finished_at < utcnow() - older_than)
        ).rowcount
