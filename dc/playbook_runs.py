"""Playbook runs and their per-host outcomes, kept in the control database.

Operators and auditors ask "what did the last fence-site do on db01?" long after the
artifact directories have been rotated away, so the outcome of every run is stored here.
Extra-variable values are not stored (only their names): a caller might pass something
sensitive, and the control database is read by monitoring and reports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Engine,
    Float,
    Integer,
    String,
    Table,
    Text,
    insert,
    select,
)

from dc.state import UtcDateTime, metadata

playbook_runs = Table(
    "playbook_runs",
    metadata,
    Column("run_id", String(96), primary_key=True),
    Column("playbook", String(64), nullable=False, index=True),
    Column("limit_pattern", Text),
    Column("check_mode", Boolean, nullable=False),
    Column("extravar_names", Text, nullable=False, default="[]"),
    Column("status", String(16), nullable=False),
    Column("rc", Integer),
    Column("ok", Boolean, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=False),
    Column("seconds", Float, nullable=False),
    Column("error", Text),
)

playbook_hosts = Table(
    "playbook_hosts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(96), nullable=False, index=True),
    Column("host", String(64), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("ok", Integer, nullable=False, default=0),
    Column("changed", Integer, nullable=False, default=0),
    Column("failed", Integer, nullable=False, default=0),
    Column("unreachable", Integer, nullable=False, default=0),
    Column("skipped", Integer, nullable=False, default=0),
    Column("rescued", Integer, nullable=False, default=0),
    Column("ignored", Integer, nullable=False, default=0),
    Column("message", Text),
    #: what the playbook reported for the host through ``set_stats`` (e.g. health facts), as JSON.
    Column("data", Text),
)


@dataclass(frozen=True)
class HostResult:
    """One host's outcome of a playbook run, taken from the runner's final stats."""

    host: str
    #: the worst outcome: unreachable > failed > changed > ok (> skipped when nothing ran).
    status: str
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    rescued: int = 0
    ignored: int = 0
    #: the first failure or connection error, for the operator's table.
    message: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


#: HostResult fields stored as columns of the same name (``data`` is stored as JSON).
_HOST_COLUMNS = ("host", "status", "ok", "changed", "failed", "unreachable", "skipped", "rescued", "ignored", "message")


@dataclass(frozen=True)
class PlaybookResult:
    """What one ``run_playbook`` did, host by host."""

    run_id: str
    playbook: str
    check: bool
    limit: str | None
    status: str
    rc: int | None
    started_at: datetime
    finished_at: datetime
    seconds: float
    hosts: list[HostResult]
    artifact_dir: str
    extravar_names: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Every host reached and nothing failed (a run that touched no host is not ok)."""
        return (
            self.status == "successful"
            and bool(self.hosts)
            and all(h.status not in ("failed", "unreachable") for h in self.hosts)
        )

    def host(self, name: str) -> HostResult:
        return next(h for h in self.hosts if h.host == name)


def record_run(engine: Engine, result: PlaybookResult) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(playbook_runs).values(
                run_id=result.run_id,
                playbook=result.playbook,
                limit_pattern=result.limit,
                check_mode=result.check,
                extravar_names=json.dumps(result.extravar_names),
                status=result.status,
                rc=result.rc,
                ok=result.ok,
                started_at=result.started_at,
                finished_at=result.finished_at,
                seconds=result.seconds,
                error=result.error,
            )
        )
        if result.hosts:
            conn.execute(insert(playbook_hosts), [_host_row(result.run_id, h) for h in result.hosts])


def _host_row(run_id: str, host: HostResult) -> dict[str, Any]:
    row: dict[str, Any] = {name: getattr(host, name) for name in _HOST_COLUMNS}
    row["data"] = json.dumps(host.data, ensure_ascii=False, default=str) if host.data else None
    return {"run_id": run_id, **row}


def load_run(engine: Engine, run_id: str) -> PlaybookResult | None:
    """A stored run with its hosts, or None."""
    with engine.connect() as conn:
        run = conn.execute(select(playbook_runs).where(playbook_runs.c.run_id == run_id)).mappings().first()
        if run is None:
            return None
        rows = conn.execute(
            select(playbook_hosts).where(playbook_hosts.c.run_id == run_id).order_by(playbook_hosts.c.id)
        ).mappings()
        hosts = [
            HostResult(**{name: r[name] for name in _HOST_COLUMNS}, data=json.loads(r["data"]) if r["data"] else {})
            for r in rows
        ]
    return PlaybookResult(
        run_id=run["run_id"],
        playbook=run["playbook"],
        check=run["check_mode"],
        limit=run["limit_pattern"],
        status=run["status"],
        rc=run["rc"],
        started_at=run["started_at"],
        finished_at=run["finished_at"],
        seconds=run["seconds"],
        hosts=hosts,
        artifact_dir="",
        extravar_names=json.loads(run["extravar_names"]),
        error=run["error"],
    )


def latest_runs(engine: Engine, playbook: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """The newest runs first (without hosts), for listings and monitoring."""
    query = select(playbook_runs).order_by(playbook_runs.c.started_at.desc()).limit(limit)
    if playbook:
        query = query.where(playbook_runs.c.playbook == playbook)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]
