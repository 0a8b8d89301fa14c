""" "Recoverable now?": the traffic light per system (dashboard, ``bcpctl status``), as a pure function.

Three facts must hold for a system to be shown green (ICT-BCP: targets are each
municipality's own BIA figures, so they come from the configuration):

1. the newest copy at a second site is within the system's RPO — the data a disaster at the
   site it runs at would cost right now (:mod:`failover.protection`: the offsite sites in
   normal operation; while failed over, the copy replicated from the active site since it
   took over, and "unprotected" until there is one);
2. the most recent drill passed, within ``drill_fresh`` (default ``drills.max_age``) —
   recovery was proven recently, not once years ago;
3. the RTO measured by the newest drill that measured it is under the target.

Red means recovery cannot be shown at all right now (no second copy, a copy older than the
RPO, never drilled, or the last drill failed); yellow means the data is there but a target
is not proven (drill overdue, RTO over target or unmeasured, a target missing).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dc.duration import format_duration
from failover.activesite import ActiveSite
from failover.protection import Protection

GREEN, YELLOW, RED = "green", "yellow", "red"
_ORDER = {GREEN: 0, YELLOW: 1, RED: 2}
_PROTECTION_LEVEL = {"protected": GREEN, "untargeted": YELLOW, "stale": RED, "missing": RED}


@dataclass(frozen=True)
class DrillFact:
    """One drill result of one system (from ``failover.records.system_history``)."""

    status: str
    finished_at: datetime
    rto_seconds: float | None = None
    rto_target: float | None = None


@dataclass(frozen=True)
class Criterion:
    name: str
    level: str
    #: Japanese first, then English, for the dashboard and the API.
    text: str


@dataclass(frozen=True)
class Light:
    level: str
    criteria: tuple[Criterion, ...]


def _age(seconds: float) -> str:
    return format_duration(max(0.0, seconds))


def copy_criterion(protection: Protection, active: ActiveSite) -> Criterion:
    """``offsite`` in normal operation, ``second_copy`` while failed over (the copy goes elsewhere)."""
    name = "second_copy" if active.failed_over else "offsite"
    return Criterion(name, _PROTECTION_LEVEL[protection.state], protection.reason)


def drill_criterion(latest: DrillFact | None, fresh: int, now: datetime) -> Criterion:
    if latest is None:
        return Criterion("drill", RED, "訓練の実績なし / never drilled")
    age = (now - latest.finished_at).total_seconds()
    if latest.status != "passed":
        return Criterion(
            "drill", RED, f"直近の訓練が失敗 ({_age(age)} 前) / last drill {latest.status} {_age(age)} ago"
        )
    if age > fresh:
        return Criterion(
            "drill", YELLOW, f"訓練が {_age(age)} 前 (期限 {_age(fresh)}) / last drill passed {_age(age)} ago, overdue"
        )
    return Criterion("drill", GREEN, f"{_age(age)} 前に訓練合格 / last drill passed {_age(age)} ago")


def rto_criterion(measured: DrillFact | None, rto: int | None) -> Criterion:
    if rto is None:
        return Criterion("rto", YELLOW, "RTO 目標未設定 / no RTO target")
    if measured is None or measured.rto_seconds is None:
        return Criterion("rto", YELLOW, "RTO 未計測 / RTO not measured yet")
    took = measured.rto_seconds
    if took > rto:
        return Criterion("rto", YELLOW, f"RTO {_age(took)} > 目標 {_age(rto)} / measured RTO over target")
    return Criterion("rto", GREEN, f"RTO {_age(took)} ≤ 目標 {_age(rto)} / measured RTO under target")


def judge(
    *,
    protection: Protection,
    active: ActiveSite,
    rto: int | None,
    drills: list[DrillFact],
    fresh: int,
    now: datetime,
) -> Light:
    """The light for one system; ``drills`` are its recovery drills, oldest first (readiness checks excluded)."""
    latest = drills[-1] if drills else None
    measured = next((d for d in reversed(drills) if d.rto_seconds is not None and d.status == "passed"), None)
    criteria = (
        copy_criterion(protection, active),
        drill_criterion(latest, fresh, now),
        rto_criterion(measured, rto),
    )
    return Light(max((c.level for c in criteria), key=_ORDER.__getitem__), criteria)
