"""The last known good snapshot the ransomware signals recorded, offered to the point-in-time drill.

When a backup looks like mass encryption (backup/anomaly.py) its run records the snapshot before
it as ``backup_runs.last_known_good``. The point-in-time drill restores "the newest snapshot taken
before a moment": the moment just after the known good backup finished picks exactly that
snapshot, and for a ``postgres-wal`` system replays WAL up to then.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, select

from dc.clock import jst_text
from dc.errors import N_, UsageError
from dc.state import backup_runs


@dataclass(frozen=True)
class KnownGood:
    system: str
    #: the snapshot before the anomalous backup
    snapshot_id: str
    #: the drill restores the newest snapshot before this moment: that snapshot (its backup had finished)
    restore_before: datetime
    #: when the anomalous backup started, and why it looked like mass encryption
    anomalous_at: datetime
    anomaly: str

    def describe(self) -> str:
        return (
            f"{self.system} looked mass-encrypted in its backup of {jst_text(self.anomalous_at)} ({self.anomaly});"
            f" last known good snapshot {self.snapshot_id[:8]}"
        )


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def known_good(state: Engine, systems: Iterable[str]) -> list[KnownGood]:
    """For each of ``systems`` whose newest anomalous backup recorded a last known good snapshot: that snapshot."""
    found = []
    with state.connect() as conn:
        for system in systems:
            hit = conn.execute(
                select(backup_runs)
                .where(backup_runs.c.system == system, backup_runs.c.last_known_good.is_not(None))
                .order_by(backup_runs.c.id.desc())
                .limit(1)
            ).first()
            if hit is None:
                continue
            good = conn.execute(
                select(backup_runs.c.finished_at)
                .where(backup_runs.c.snapshot_id == hit.last_known_good, backup_runs.c.ok.is_(True))
                .limit(1)
            ).first()
            # without the good backup's own row, the anomalous backup's start is still after it
            before = good.finished_at if good is not None and good.finished_at is not None else hit.started_at
            found.append(
                KnownGood(system, hit.last_known_good, _aware(before), _aware(hit.started_at), hit.anomaly or "")
            )
    return found


def restore_point(goods: list[KnownGood], systems: list[str]) -> datetime:
    """The moment ``--last-known-good`` restores to (pure): before the earliest system went bad."""
    if not goods:
        raise UsageError(
            N_("no anomaly with a last known good snapshot is recorded for {systems}: give --before TIME"),
            systems=", ".join(systems),
        )
    return min(g.restore_before for g in goods)
