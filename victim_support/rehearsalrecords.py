"""What the export rehearsals (``drill run --mode export``) proved, for monitoring: per tenant and
partner the newest passed rehearsal, when it ran and how long the delivery took.

A rehearsal's time to deliver is the export's RTO, the one number a partner waiting for a list
after a disaster cares about; it is read back from the rehearsal's audit entry (written only
after the whole path ran) joined with its ``drill_runs`` verdict, so a run whose partner side
failed never counts as proof. :func:`overdue_tenants` is pure (``now`` passed in).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, select

from dc.audit import audit_log
from failover.records import drill_runs
from victim_support.rehearsal import TRAINING

ACTION = "drill.export"


@dataclass(frozen=True)
class Rehearsal:
    tenant: str
    partner: str
    run: str
    at: datetime
    #: seconds from the rehearsal's start to the bundle in the partner's inbox
    time_to_deliver: float


def passed_rehearsals(engine: Engine) -> dict[tuple[str, str], Rehearsal]:
    """The newest passed rehearsal of each (tenant, partner)."""
    prefix = f"{TRAINING}:"
    with engine.connect() as conn:
        entries = conn.execute(
            select(audit_log.c.subject, audit_log.c.at, audit_log.c.details)
            .where(audit_log.c.action == ACTION)
            .order_by(audit_log.c.seq)
        ).all()
        verdicts = dict(
            conn.execute(select(drill_runs.c.id, drill_runs.c.status).where(drill_runs.c.mode == "export")).all()
        )
    newest: dict[tuple[str, str], Rehearsal] = {}
    for subject, at, text in entries:
        tenant, _, partner = str(subject).removeprefix(prefix).partition("->")
        details = json.loads(text)
        seconds, run = details.get("time_to_deliver_seconds"), str(details.get("run"))
        if not str(subject).startswith(prefix) or not partner or verdicts.get(run) != "passed" or seconds is None:
            continue
        newest[(tenant, partner)] = Rehearsal(tenant, partner, run, datetime.fromisoformat(at), float(seconds))
    return newest


def overdue_tenants(
    tenants: Iterable[str], newest: Mapping[tuple[str, str], Rehearsal], now: datetime, max_age: float
) -> set[str]:
    """Tenants whose newest passed rehearsal, with any partner, is older than ``max_age`` seconds (or none)."""
    last: dict[str, datetime] = {}
    for (tenant, _partner), rehearsal in newest.items():
        last[tenant] = max(last.get(tenant, rehearsal.at), rehearsal.at)
    limit = timedelta(seconds=max_age)
    return {t for t in tenants if t not in last or now - last[t] > limit}
