"""When drills may run, and which systems have gone too long without a successful one.

A drill competes with the counters' busiest weeks — 確定申告 (February–March), the 年度末・
年度初め moving season, elections — for the same staff and shared hardware, so those periods
are configured as blackouts and the scheduler skips them. Zerto's "test reminder" is the model
for the overdue flag: a system whose last successful drill is older than ``max_age`` (or that
never had one) is flagged. Pure functions; ``now`` is always passed in. Days are judged in
JST, the calendar the municipalities work by (Japan has no daylight saving time).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from dc.clock import JST, jst_day
from failover.settings import Blackout

__all__ = ["Overdue", "blackout_on", "next_drill_window", "overdue_systems"]


def _recurring_contains(blackout: Blackout, day: date) -> bool:
    key = day.strftime("%m-%d")
    if blackout.start <= blackout.end:
        return blackout.start <= key <= blackout.end
    # wraps the new year (e.g. 12-28 .. 01-04, 年末年始)
    return key >= blackout.start or key <= blackout.end


def blackout_on(when: datetime, blackouts: Iterable[Blackout]) -> Blackout | None:
    """The first blackout covering ``when`` (its JST calendar day), else ``None``."""
    day = jst_day(when)
    for blackout in blackouts:
        if blackout.recurring:
            if _recurring_contains(blackout, day):
                return blackout
        elif blackout.start <= day.isoformat() <= blackout.end:
            return blackout
    return None


def next_drill_window(when: datetime, blackouts: Iterable[Blackout], *, horizon_days: int = 400) -> datetime:
    """``when`` itself if it is outside every blackout, else the start of the first free JST day."""
    periods = list(blackouts)
    if blackout_on(when, periods) is None:
        return when
    day = jst_day(when)
    for offset in range(1, horizon_days + 1):
        candidate = datetime.combine(day + timedelta(days=offset), time(0, 0), JST)
        if blackout_on(candidate, periods) is None:
            return candidate
    raise ValueError(f"every day of the next {horizon_days} is in a blackout period; check drills.blackouts")


@dataclass(frozen=True)
class Overdue:
    system: str
    last_success: datetime | None
    #: seconds since the last successful drill, ``None`` when there never was one.
    age: float | None
    max_age: int


def overdue_systems(
    systems: Iterable[str], last_success: Mapping[str, datetime | None], now: datetime, max_age: int
) -> list[Overdue]:
    """Systems not drilled successfully within ``max_age`` seconds of ``now``, in the given order."""
    flagged = []
    for system in systems:
        last = last_success.get(system)
        if last is None:
            flagged.append(Overdue(system, None, None, max_age))
            continue
        age = (now - last).total_seconds()
        if age > max_age:
            flagged.append(Overdue(system, last, age, max_age))
    return flagged
