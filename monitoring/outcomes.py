"""Scheduled runs that failed before their subsystem could record them, recorded as failed.

Each subsystem records its own runs (``backup_runs``, ``replication_runs``) once it has
opened what it works on; a run that fails earlier — the repository does not exist, the
storage does not answer — leaves no row, and the last-run gauges read those rows: the
newest recorded run stayed a success while the scheduler counted failure after failure.
The scheduler's tasks call these on any failure; a run the subsystem did record is not
recorded twice.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, func, select

from backup.jobs import SystemBackup, record_run, system_request
from dc.clock import utcnow
from dc.config import Consortium
from dc.errors import BcpError, message_of
from replication.ledger import Ledger, runs
from storage.url import repository_url_key


def failure_message(exc: BaseException) -> str:
    """A failed job's line: a core error keeps its template (the run records show it translated)."""
    return message_of(exc) if isinstance(exc, BcpError) else f"{type(exc).__name__}: {exc}"


def record_backup_failure(
    engine: Engine,
    config: Consortium,
    config_dir: Path | None,
    site: str,
    system_id: str,
    started: datetime,
    message: str,
) -> None:
    """A backup of ``system_id`` into ``site`` that never reached the system's source."""
    repository = repository_url_key(config.sites[site].repository)
    request = system_request(config, system_id, config_dir)
    record_run(engine, repository, request, started, SystemBackup(system_id, False, None, message))


def record_replication_failure(
    engine: Engine, config: Consortium, source: str, target: str, started: datetime, message: str
) -> None:
    """A replication ``source`` → ``target`` (sites) that failed, unless the sync recorded it itself."""
    target_url = repository_url_key(config.sites[target].repository)
    with engine.connect() as conn:
        recorded = conn.execute(
            select(func.count()).where(runs.c.target == target_url, runs.c.started_at >= started)
        ).scalar_one()
    if recorded:
        return
    finished = utcnow()
    Ledger(engine).record_run(
        source=repository_url_key(config.sites[source].repository),
        target=target_url,
        started_at=started,
        finished_at=finished,
        ok=False,
        objects_copied=0,
        bytes_sent=0,
        seconds=round((finished - started).total_seconds(), 3),
        manifest_sequence=None,
        error=message[:2000],
    )
