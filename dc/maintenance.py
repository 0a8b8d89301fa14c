"""Maintenance mode: hosts that scheduled jobs and drills must leave alone.

An operator replacing a disk does not want the 03:00 drill to restore onto that host, nor an
alert storm about it. The state lives in the control database, so the scheduler, drills and
monitoring (which exports it) all see the same answer; every change is also appended to a
history table for the audit trail.

Other packages load the state once with :func:`load_maintenance` and ask the pure
:func:`in_maintenance` / :func:`hosts_to_skip` as often as they need.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Boolean, Column, Engine, Integer, String, Table, Text, delete, insert, select

from dc.clock import utcnow
from dc.osuser import os_user
from dc.state import UtcDateTime, metadata

host_maintenance = Table(
    "host_maintenance",
    metadata,
    Column("host", String(64), primary_key=True),
    Column("reason", Text, nullable=False, default=""),
    Column("since", UtcDateTime, nullable=False),
    Column("operator", String(64), nullable=False, default=""),
)

maintenance_events = Table(
    "maintenance_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("host", String(64), nullable=False, index=True),
    Column("on", Boolean, nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("at", UtcDateTime, nullable=False),
    Column("operator", String(64), nullable=False, default=""),
)


@dataclass(frozen=True)
class Maintenance:
    """A host in maintenance: since when, why, and who said so."""

    host: str
    reason: str
    since: datetime
    operator: str


def in_maintenance(host: str, state: Mapping[str, Maintenance]) -> bool:
    """Whether ``host`` is in maintenance according to a loaded ``state`` (pure)."""
    return host in state


def hosts_to_skip(hosts: Iterable[str], state: Mapping[str, Maintenance]) -> list[str]:
    """The hosts, in the given order, that a scheduled job or drill must not touch (pure)."""
    return [h for h in hosts if in_maintenance(h, state)]


def load_maintenance(engine: Engine) -> dict[str, Maintenance]:
    """Every host currently in maintenance, by name."""
    with engine.connect() as conn:
        rows = conn.execute(select(host_maintenance).order_by(host_maintenance.c.host)).mappings()
        return {r["host"]: Maintenance(r["host"], r["reason"], r["since"], r["operator"]) for r in rows}


def set_maintenance(
    engine: Engine, host: str, on: bool, *, reason: str = "", operator: str | None = None, now: datetime | None = None
) -> Maintenance | None:
    """Put ``host`` into maintenance (or take it out); idempotent. Returns the new state.

    Turning it on again keeps the original ``since`` and updates the reason.
    """
    now = now or utcnow()
    operator = operator if operator is not None else os_user()
    with engine.begin() as conn:
        current = conn.execute(select(host_maintenance).where(host_maintenance.c.host == host)).mappings().first()
        if on:
            since = current["since"] if current else now
            conn.execute(delete(host_maintenance).where(host_maintenance.c.host == host))
            conn.execute(insert(host_maintenance).values(host=host, reason=reason, since=since, operator=operator))
        else:
            conn.execute(delete(host_maintenance).where(host_maintenance.c.host == host))
        if on or current is not None:
            conn.execute(insert(maintenance_events).values(host=host, on=on, reason=reason, at=now, operator=operator))
    return Maintenance(host, reason, since, operator) if on else None
