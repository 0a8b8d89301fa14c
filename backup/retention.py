"""Retention policy: which snapshots to keep. A pure function — no I/O, ``now`` passed in.

Semantics follow restic's ``ApplyPolicy``: per group (a system, or a source for ad-hoc
backups), walk snapshots newest first; ``keep-last N`` keeps the N newest; ``keep-daily N``
keeps the newest snapshot of each of the N most recent days that have one (likewise hourly,
weekly, monthly, yearly); ``keep-within D`` keeps everything newer than ``now - D`` — on an
append-only offsite, junk snapshots injected by an attacker cannot push real ones out of a
time window the way they can push them out of a count. Buckets use the consortium's local
time zone (a "daily" snapshot is a 日本時間 day).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

from dc.errors import UsageError


@dataclass(frozen=True)
class RetentionPolicy:
    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0
    within_seconds: int = 0

    @property
    def empty(self) -> bool:
        return not any(
            (self.last, self.hourly, self.daily, self.weekly, self.monthly, self.yearly, self.within_seconds)
        )


@dataclass(frozen=True)
class Candidate:
    id: str
    time: datetime
    group: str


@dataclass
class Decision:
    id: str
    group: str
    time: datetime
    keep: bool
    reasons: list[str] = field(default_factory=list)


_BUCKETS: list[tuple[str, Callable[[datetime], tuple[int, ...]]]] = [
    ("hourly", lambda t: (t.year, t.month, t.day, t.hour)),
    ("daily", lambda t: (t.year, t.month, t.day)),
    ("weekly", lambda t: tuple(t.isocalendar()[:2])),
    ("monthly", lambda t: (t.year, t.month)),
    ("yearly", lambda t: (t.year,)),
]


def apply_policy(
    snapshots: Iterable[Candidate], policy: RetentionPolicy, *, now: datetime, tz: tzinfo | None = None
) -> list[Decision]:
    """Decide keep/remove for every snapshot, each decision with the rules that kept it."""
    if policy.empty:
        raise UsageError("refusing to forget with an empty policy (it would remove every snapshot)")
    groups: dict[str, list[Candidate]] = defaultdict(list)
    for snap in snapshots:
        groups[snap.group].append(snap)
    decisions: list[Decision] = []
    for group in sorted(groups):
        newest_first = sorted(groups[group], key=lambda s: (s.time, s.id), reverse=True)
        kept: dict[str, list[str]] = defaultdict(list)
        for i, snap in enumerate(newest_first):
            if i < policy.last:
                kept[snap.id].append("last")
            if policy.within_seconds and snap.time >= now - timedelta(seconds=policy.within_seconds):
                kept[snap.id].append("within")
        for rule, bucket_of in _BUCKETS:
            budget = getattr(policy, rule)
            last_bucket = None
            for snap in newest_first:
                if budget <= 0:
                    break
                bucket = bucket_of(snap.time.astimezone(tz))
                if bucket != last_bucket:
                    kept[snap.id].append(rule)
                    last_bucket = bucket
                    budget -= 1
        for snap in newest_first:
            decisions.append(Decision(snap.id, group, snap.time, bool(kept.get(snap.id)), kept.get(snap.id, [])))
    return decisions
