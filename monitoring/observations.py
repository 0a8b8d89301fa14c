"""Health-check results in the control database: the newest observation per kind and subject.

Probes run in the scheduler's health job; scrapes read the stored results, so a scrape never
waits on the network and a standby serves the same values as the leader. Only the newest
result is kept (one row per kind and subject): history belongs in Prometheus.
A probe that could not be made (e.g. a host address a loopback-only probe must not contact)
stores ``ok = NULL`` and is never exported as up or down.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Boolean, Column, Engine, Float, String, Table, Text, delete, select, update

from dc.state import UtcDateTime, metadata
from monitoring.dialect import insert_ignore

health_observations = Table(
    "health_observations",
    metadata,
    #: host, repository, repository_size, filesystem, source
    Column("kind", String(32), primary_key=True),
    #: host id, site id or system id
    Column("subject", String(200), primary_key=True),
    Column("site", String(64)),
    Column("tenant", String(64)),
    #: how the check was made, e.g. tcp_connect or ssh
    Column("probe", String(32)),
    Column("ok", Boolean),
    #: a measured value (bytes) where the check measures one
    Column("value", Float),
    #: a second measured value (the filesystem's size next to its free bytes)
    Column("value2", Float),
    Column("detail", Text),
    Column("checked_at", UtcDateTime, nullable=False),
)


@dataclass(frozen=True)
class Observation:
    kind: str
    subject: str
    ok: bool | None
    checked_at: datetime
    site: str | None = None
    tenant: str | None = None
    probe: str | None = None
    value: float | None = None
    value2: float | None = None
    #: a short reason for a failure, fit for an operator's log (never a secret)
    detail: str | None = None


def record(engine: Engine, observations: Iterable[Observation]) -> None:
    with engine.begin() as conn:
        for obs in observations:
            values = {
                "site": obs.site,
                "tenant": obs.tenant,
                "probe": obs.probe,
                "ok": obs.ok,
                "value": obs.value,
                "value2": obs.value2,
                "detail": (obs.detail or "")[:500] or None,
                "checked_at": obs.checked_at,
            }
            if not insert_ignore(conn, health_observations, kind=obs.kind, subject=obs.subject, **values):
                conn.execute(
                    update(health_observations)
                    .where(health_observations.c.kind == obs.kind, health_observations.c.subject == obs.subject)
                    .values(**values)
                )


def latest(engine: Engine) -> list[Observation]:
    with engine.connect() as conn:
        rows = conn.execute(select(health_observations)).all()
    return [
        Observation(
            row.kind,
            row.subject,
            row.ok,
            row.checked_at,
            row.site,
            row.tenant,
            row.probe,
            row.value,
            row.value2,
            row.detail,
        )
        for row in rows
    ]


def forget_except(engine: Engine, kind: str, subjects: set[str]) -> None:
    """Drop observations of subjects no longer in the configuration (a removed host stays silent)."""
    with engine.begin() as conn:
        conn.execute(
            delete(health_observations).where(
                health_observations.c.kind == kind, health_observations.c.subject.not_in(subjects or {""})
            )
        )
