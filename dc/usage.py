"""Measured resource use per tenant, read from the control database for the cost split.

Repository bytes and backup time come from ``backup_runs`` (written by every backup). Drill
time is recorded by the drill runner through :func:`record_usage` (kind ``drill_seconds``),
since drills live in a package above this one; it is shown beside the cost split, never billed
(dc/cost.py). Bytes are what each tenant's backups added to
the repository after deduplication: the storage it actually costs.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, datetime

from sqlalchemy import Column, Engine, Float, Integer, String, Table, Text, func, insert, select

from dc.clock import utcnow
from dc.cost import TenantUsage
from dc.errors import N_, UsageError
from dc.state import UtcDateTime, backup_runs, metadata

#: repository bytes are always measured from backup_runs, never recorded by hand
RECORDED_KINDS = ("backup_seconds", "drill_seconds")

resource_usage = Table(
    "resource_usage",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("amount", Float, nullable=False),
    Column("at", UtcDateTime, nullable=False, index=True),
    #: what it was for, e.g. a drill run id.
    Column("ref", Text),
)


def record_usage(
    engine: Engine, tenant: str, kind: str, amount: float, *, at: datetime | None = None, ref: str = ""
) -> None:
    """Record resource use not visible in backup_runs, e.g. ``drill_seconds`` after a drill."""
    if kind not in RECORDED_KINDS:
        raise UsageError(
            N_("unknown usage kind '{kind}' (known: {RECORDED_KINDS})"),
            kind=kind,
            RECORDED_KINDS=", ".join(RECORDED_KINDS),
        )
    if amount < 0:
        raise UsageError(N_("usage amount must not be negative"))
    with engine.begin() as conn:
        conn.execute(insert(resource_usage).values(tenant=tenant, kind=kind, amount=amount, at=at or utcnow(), ref=ref))


def month_bounds(period: str) -> tuple[datetime, datetime]:
    """[start, end) of a YYYY-MM month in UTC."""
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", period):
        raise UsageError(N_("invalid period '{period}': use YYYY-MM"), period=period)
    year, month = (int(x) for x in period.split("-"))
    return datetime(year, month, 1, tzinfo=UTC), datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)


def measure_usage(engine: Engine, period: str | None = None) -> dict[str, TenantUsage]:
    """Per tenant: bytes stored up to the end of ``period``; backup and drill time within it.

    Without a period: everything recorded so far.
    """
    start, end = month_bounds(period) if period else (None, None)
    stored: dict[str, int] = defaultdict(int)
    seconds: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    with engine.connect() as conn:
        q = select(backup_runs.c.tenant, func.sum(backup_runs.c.bytes_added)).where(
            backup_runs.c.ok.is_(True), backup_runs.c.tenant.is_not(None)
        )
        if end is not None:
            q = q.where(backup_runs.c.started_at < end)
        for tenant, total in conn.execute(q.group_by(backup_runs.c.tenant)):
            stored[tenant] += int(total or 0)
        q = select(backup_runs.c.tenant, func.sum(backup_runs.c.seconds)).where(backup_runs.c.tenant.is_not(None))
        if start is not None:
            q = q.where(backup_runs.c.started_at >= start, backup_runs.c.started_at < end)
        for tenant, total in conn.execute(q.group_by(backup_runs.c.tenant)):
            seconds[tenant]["backup_seconds"] += float(total or 0)
        by_kind = select(resource_usage.c.tenant, resource_usage.c.kind, func.sum(resource_usage.c.amount))
        if start is not None:
            by_kind = by_kind.where(resource_usage.c.at >= start, resource_usage.c.at < end)
        for tenant, kind, total in conn.execute(by_kind.group_by(resource_usage.c.tenant, resource_usage.c.kind)):
            seconds[tenant][kind] += float(total or 0)
    tenants = set(stored) | set(seconds)
    return {
        t: TenantUsage(
            repository_bytes=stored.get(t, 0),
            backup_seconds=round(seconds[t].get("backup_seconds", 0.0), 3),
            drill_seconds=round(seconds[t].get("drill_seconds", 0.0), 3),
        )
        for t in sorted(tenants)
    }
