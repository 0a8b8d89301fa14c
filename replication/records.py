"""What the replication ledger stores and hands back, as plain values.

Apart from :mod:`replication.ledger` (SQLAlchemy tables) so the sync can build and read them
without importing the database layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Pin:
    repository: str
    public_key: str
    sequence: int
    manifest_sha256: str


@dataclass(frozen=True)
class SystemLag:
    system: str
    source_newest: datetime | None
    target_newest: datetime | None
    #: how far the target's newest snapshot trails the source's (0 when caught up)
    lag_seconds: float | None
    #: how far the newest moment the target can recover to trails the source's: the newest
    #: snapshot or, for a postgres-wal system, the newest archived WAL, whichever is later
    recovery_point_lag_seconds: float | None = None
