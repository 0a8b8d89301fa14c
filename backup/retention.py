"""Retention policy: which snapshots to keep. A pure function — no I/O, ``now`` passed in.

Semantics follow restic's ``ApplyPolicy``: per group (a system, or a source for ad-hoc
backups), walk snapshots newest first; ``keep-last N`` keeps the N newest; ``keep-daily N``
keeps the newest snapshot of each of the N most recent days that have one (likewise hourly,
weekly, monthly, yearly); ``keep-within D`` keeps everything newer than ``now - D`` — on an
append-only offsite, junk snapshots injected by an attacker cannot push real ones out of a
time window the way they can push them out of a count. Buckets use the consortium's local
time zone (a "daily" snapshot is a 日本時間 day).

A count is ``N >= 0`` or :data:`UNLIMITED` (keep every one, restic's ``unlimited``); any
other negative number is refused, never read as "keep none" or "keep all": ``--keep-daily
-5`` is a typo. The newest snapshot of every group is always kept unless the caller passes
``allow_empty``: a system whose backups stopped a week ago must not lose its last restore
point to ``--keep-within 1d``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta, tzinfo

from dc.errors import N_, UsageError

#: a count meaning "keep all"
UNLIMITED = -1
#: ``keep-within`` beyond this is a typo (and beyond what ``datetime`` can subtract)
MAX_WITHIN_SECONDS = 100 * 366 * 86400

_COUNTS = ("last", "hourly", "daily", "weekly", "monthly", "yearly")


@dataclass(frozen=True)
class RetentionPolicy:
    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0
    within_seconds: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if type(value) is not int:
                raise UsageError(N_("retention {name} must be a whole number, not {value!r}"), name=f.name, value=value)
        for name in _COUNTS:
            value = getattr(self, name)
            if value < 0 and value != UNLIMITED:
                raise UsageError(
                    N_("keep-{name} {value} is negative: use a count >= 0, or 'unlimited' to keep all"),
                    name=name,
                    value=value,
                )
        if not 0 <= self.within_seconds <= MAX_WITHIN_SECONDS:
            raise UsageError(
                N_("keep-within must be between 0 and 100 years (got {within_seconds} s)"),
                within_seconds=self.within_seconds,
            )

    @property
    def empty(self) -> bool:
        return not any(getattr(self, name) for name in (*_COUNTS, "within_seconds"))


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


def _within_budget(used: int, budget: int) -> bool:
    return budget == UNLIMITED or used < budget


def apply_policy(
    snapshots: Iterable[Candidate],
    policy: RetentionPolicy,
    *,
    now: datetime,
    tz: tzinfo | None = None,
    allow_empty: bool = False,
) -> list[Decision]:
    """Decide keep/remove for every snapshot, each decision with the rules that kept it.

    Groups in name order, each newest first. Unless ``allow_empty``, a group's newest
    snapshot is kept (reason ``newest``) when no rule keeps it.
    """
    if policy.empty:
        raise UsageError(N_("refusing to forget with an empty policy (it would remove every snapshot)"))
    groups: dict[str, list[Candidate]] = defaultdict(list)
    for snap in snapshots:
        groups[snap.group].append(snap)
    horizon = now - timedelta(seconds=policy.within_seconds)
    decisions: list[Decision] = []
    for group in sorted(groups):
        newest_first = sorted(groups[group], key=lambda s: (s.time, s.id), reverse=True)
        kept: dict[str, list[str]] = defaultdict(list)
        for i, snap in enumerate(newest_first):
            if _within_budget(i, policy.last):
                kept[snap.id].append("last")
            if policy.within_seconds and snap.time >= horizon:
                kept[snap.id].append("within")
        for rule, bucket_of in _BUCKETS:
            budget = getattr(policy, rule)
            used = 0
            last_bucket = None
            for snap in newest_first:
                if not budget or not _within_budget(used, budget):
                    break
                bucket = bucket_of(snap.time.astimezone(tz))
                if bucket != last_bucket:
                    kept[snap.id].append(rule)
                    last_bucket = bucket
                    used += 1
        if newest_first and not allow_empty and not kept.get(newest_first[0].id):
            kept[newest_first[0].id].append("newest")
        for snap in newest_first:
            decisions.append(Decision(snap.id, group, snap.time, bool(kept.get(snap.id)), kept.get(snap.id, [])))
    return decisions
