"""Drill, failover and failback runs in the control database: what ran, what it created, how it ended.

Three tables, in the style of SRM's queryable history report:

* ``drill_runs`` — one row per run (kind, mode, status, who, when, the whole report as JSON);
* ``drill_systems`` — one row per system and run, so RTO/RPO trends and "last successful
  drill" are one query (monitoring reads these);
* ``drill_resources`` — everything a drill creates, written *before* it is created. A run
  killed by SIGKILL therefore leaves a record of every sandbox it may have made, and the next
  run finds and removes them (AWS DRS leaves drill instances running after a cancel; we do not).

A run is dead when its process is gone (same host: pid and process start time no longer
match) or, on another host, when its deadline has passed.

This is the one record of a run, wherever it was started: the command line, the scheduler,
or the web, which records the run as soon as it is asked for (:func:`announce_run`) so that
the page and the API answer with the run's id before the drill has begun.
"""

from __future__ import annotations

import json
import os
import socket
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Float,
    Integer,
    String,
    Table,
    Text,
    and_,
    insert,
    select,
    update,
)

from dc.clock import utcnow
from dc.state import UtcDateTime, metadata, naming_damaged_rows
from dc.storedmessages import column_text, from_columns, indexed, revive

drill_runs = Table(
    "drill_runs",
    metadata,
    Column("id", String(48), primary_key=True),
    #: drill, failover or failback
    Column("kind", String(16), nullable=False, index=True),
    Column("mode", String(24), nullable=False),
    #: running, passed, failed, aborted or killed
    Column("status", String(16), nullable=False, index=True),
    Column("consortium", String(64), nullable=False),
    Column("site", String(64)),
    Column("target_site", String(64)),
    Column("declared_at", UtcDateTime, nullable=False),
    Column("deadline", UtcDateTime),
    Column("finished_at", UtcDateTime),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("pid_start", String(32)),
    Column("operator", String(64)),
    Column("approver", String(64)),
    Column("error", Text),
    #: ``error`` as its catalog template and parameters (dc.storedmessages; migration 0012)
    Column("error_message", Text),
    Column("document", Text),
    #: the one tenant a drill was limited to (``--tenant``), else NULL
    Column("tenant", String(64)),
)

drill_systems = Table(
    "drill_systems",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(48), nullable=False, index=True),
    Column("system", String(64), nullable=False, index=True),
    Column("tenant", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("snapshot_id", String(64)),
    Column("snapshot_time", UtcDateTime),
    Column("rto_seconds", Float),
    Column("rpo_seconds", Float),
    Column("rto_target", Integer),
    Column("rpo_target", Integer),
    Column("finished_at", UtcDateTime, nullable=False),
)

drill_resources = Table(
    "drill_resources",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(48), nullable=False, index=True),
    #: pg_database, pg_role or directory
    Column("kind", String(24), nullable=False),
    Column("name", Text, nullable=False),
    #: the server (DSN without password) or the parent directory
    Column("location", Text, nullable=False),
    #: intended (about to be created), created, removed or leftover
    Column("state", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("removed_at", UtcDateTime),
    Column("detail", Text),
)


def process_start(pid: int) -> str | None:
    """Start time of ``pid`` in clock ticks since boot (``/proc/PID/stat`` field 22): guards pid reuse."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


@dataclass(frozen=True)
class RunRecord:
    id: str
    kind: str
    mode: str
    status: str
    site: str | None
    target_site: str | None
    declared_at: datetime
    finished_at: datetime | None
    host: str
    pid: int
    pid_start: str | None
    deadline: datetime | None
    operator: str | None
    approver: str | None
    error: str | None
    tenant: str | None = None


def announce_run(
    conn: Connection,
    run_id: str,
    *,
    kind: str,
    mode: str,
    consortium: str,
    declared_at: datetime,
    operator: str | None,
    tenant: str | None = None,
) -> None:
    """Record a run as running before it begins, in the caller's transaction (with its audit entry).

    The run itself (:func:`start_run`, from this process) then takes the record over; if this
    process dies first, the record is dead like any other (:func:`is_dead`) and swept as killed.
    """
    conn.execute(
        insert(drill_runs).values(
            id=run_id,
            kind=kind,
            mode=mode,
            status="running",
            consortium=consortium,
            declared_at=declared_at,
            host=socket.gethostname(),
            pid=os.getpid(),
            pid_start=process_start(os.getpid()),
            operator=operator,
            tenant=tenant,
        )
    )


def start_run(
    state: Engine,
    run_id: str,
    *,
    kind: str,
    mode: str,
    consortium: str,
    site: str | None,
    declared_at: datetime,
    deadline: datetime | None,
    target_site: str | None = None,
    operator: str | None = None,
    approver: str | None = None,
    tenant: str | None = None,
) -> None:
    """Record the run as running; a record this process announced for the same id is taken over."""
    values = {
        "kind": kind,
        "mode": mode,
        "consortium": consortium,
        "site": site,
        "target_site": target_site,
        "declared_at": declared_at,
        "deadline": deadline,
        "operator": operator,
        "approver": approver,
        "tenant": tenant,
    }
    host, pid = socket.gethostname(), os.getpid()
    with state.begin() as conn:
        announced = conn.execute(
            update(drill_runs)
            .where(
                drill_runs.c.id == run_id,
                drill_runs.c.status == "running",
                drill_runs.c.host == host,
                drill_runs.c.pid == pid,
            )
            .values(**values)
        ).rowcount
        if not announced:
            conn.execute(
                insert(drill_runs).values(
                    id=run_id, status="running", host=host, pid=pid, pid_start=process_start(pid), **values
                )
            )


def finish_run(state: Engine, run_id: str, *, status: str, error: str | None, document: dict[str, Any]) -> None:
    with state.begin() as conn:
        conn.execute(
            update(drill_runs)
            .where(drill_runs.c.id == run_id)
            .values(
                status=status,
                error=error,
                error_message=column_text(error),
                finished_at=utcnow(),
                document=json.dumps(indexed(document), ensure_ascii=False, default=str),
            )
        )


def record_systems(state: Engine, run_id: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    with state.begin() as conn:
        conn.execute(insert(drill_systems), [dict(row, run_id=run_id) for row in rows])


def naming_damage(state: Engine) -> AbstractContextManager[None]:
    """A run record edited into a time bcpctl never wrote is named by table, run and column (exit 1):
    ``status`` reads these during a disaster, where a traceback would answer nothing."""
    return naming_damaged_rows(state, drill_runs, drill_systems, drill_resources)


def _run(row: Any) -> RunRecord:
    return RunRecord(
        row.id,
        row.kind,
        row.mode,
        row.status,
        row.site,
        row.target_site,
        row.declared_at,
        row.finished_at,
        row.host,
        row.pid,
        row.pid_start,
        row.deadline,
        row.operator,
        row.approver,
        from_columns(row.error, row.error_message),
        row.tenant,
    )


def get_run(state: Engine, run_id: str) -> RunRecord | None:
    with state.connect() as conn, naming_damage(state):
        row = conn.execute(select(drill_runs).where(drill_runs.c.id == run_id)).first()
    return _run(row) if row is not None else None


def list_runs(state: Engine, *, kind: str | None = None, limit: int = 50) -> list[RunRecord]:
    query = select(drill_runs).order_by(drill_runs.c.declared_at.desc()).limit(limit)
    if kind is not None:
        query = query.where(drill_runs.c.kind == kind)
    with state.connect() as conn, naming_damage(state):
        return [_run(row) for row in conn.execute(query)]


def load_document(state: Engine, run_id: str) -> tuple[RunRecord, dict[str, Any] | None] | None:
    """A run and its stored report; a unique prefix of the id is enough.

    The report's lines for people are Messages again where it recorded them
    (:mod:`dc.storedmessages`), so each reader sees them in their own language.
    """
    with state.connect() as conn, naming_damage(state):
        rows = list(conn.execute(select(drill_runs).where(drill_runs.c.id.startswith(run_id, autoescape=True))))
    if len(rows) != 1:
        return None
    row = rows[0]
    return _run(row), (revive(json.loads(row.document)) if row.document else None)


def is_dead(run: RunRecord, now: datetime, *, grace: timedelta = timedelta(minutes=10)) -> bool:
    """Whether a ``running`` record belongs to a process that can no longer finish it."""
    if run.host == socket.gethostname() and run.pid_start is not None:
        return process_start(run.pid) != run.pid_start
    if run.host == socket.gethostname() and not _alive(run.pid):
        return True
    return run.deadline is not None and now > run.deadline + grace


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_runs(state: Engine, now: datetime) -> list[RunRecord]:
    with state.connect() as conn, naming_damage(state):
        rows = conn.execute(select(drill_runs).where(drill_runs.c.status == "running"))
        return [run for run in (_run(row) for row in rows) if is_dead(run, now)]


def mark_killed(state: Engine, run_id: str, error: str) -> None:
    end_unfinished(state, run_id, "killed", error)


def end_unfinished(state: Engine, run_id: str, status: str, error: str) -> None:
    """End a run that can no longer finish itself (killed, or failed before it began); a finished run stays as it is."""
    with state.begin() as conn:
        conn.execute(
            update(drill_runs)
            .where(and_(drill_runs.c.id == run_id, drill_runs.c.status == "running"))
            .values(status=status, error=error, error_message=column_text(error), finished_at=utcnow())
        )


# -- history ----------------------------------------------------------------------------


def system_history(state: Engine, systems: list[str], *, limit: int = 20) -> dict[str, list[dict[str, Any]]]:
    """The last ``limit`` drill results per system, oldest first: the trend in reports."""
    history: dict[str, list[dict[str, Any]]] = {}
    with state.connect() as conn, naming_damage(state):
        for system in systems:
            query = (
                select(drill_systems, drill_runs.c.mode, drill_runs.c.kind)
                .join(drill_runs, drill_runs.c.id == drill_systems.c.run_id)
                .where(drill_systems.c.system == system)
                .order_by(drill_systems.c.finished_at.desc())
                .limit(limit)
            )
            rows = [
                {
                    "run_id": r.run_id,
                    "kind": r.kind,
                    "mode": r.mode,
                    "status": r.status,
                    "rto_seconds": r.rto_seconds,
                    "rpo_seconds": r.rpo_seconds,
                    "rto_target": r.rto_target,
                    "rpo_target": r.rpo_target,
                    "finished_at": r.finished_at,
                }
                for r in conn.execute(query)
            ]
            history[system] = list(reversed(rows))
    return history


def last_success(state: Engine) -> dict[str, datetime]:
    """Per system, when its newest passed drill or failover finished (monitoring's overdue input)."""
    from sqlalchemy import func

    query = (
        select(drill_systems.c.system, func.max(drill_systems.c.finished_at))
        .where(drill_systems.c.status == "passed")
        .group_by(drill_systems.c.system)
    )
    with state.connect() as conn, naming_damage(state):
        return {system: when for system, when in conn.execute(query)}


def last_handover(state: Engine) -> RunRecord | None:
    """The newest passed failover or failback: the run that decided which site serves now.

    Ordered by when they finished (promoted), not by when they were declared: a failover may
    be declared at the earthquake's time, long before the operator could start it.
    """
    query = (
        select(drill_runs)
        .where(and_(drill_runs.c.kind.in_(("failover", "failback")), drill_runs.c.status == "passed"))
        .order_by(drill_runs.c.finished_at.desc())
        .limit(1)
    )
    with state.connect() as conn, naming_damage(state):
        row = conn.execute(query).first()
    return None if row is None else _run(row)


def active_failover(state: Engine) -> RunRecord | None:
    """The passed failover that no passed failback has ended yet, if any: the site now serving."""
    last = last_handover(state)
    return last if last is not None and last.kind == "failover" else None
