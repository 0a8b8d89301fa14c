"""How far each system's recovery point at the target trails the primary's, from both listings.

The snapshot lag compares the newest signed snapshot per system at each site; the recovery
point lag counts a postgres-wal system's archived WAL too. Shared by the one-shot sync and
the follower, which refreshes the WAL part between its full runs.
"""

from __future__ import annotations

from datetime import UTC, datetime

from backup.manifest import Manifest
from replication.records import SystemLag
from replication.walobjects import is_wal_object
from storage.backend import ObjectInfo


def lags_between(source: Manifest | None, target: Manifest | None, src: dict, tgt: dict) -> list[SystemLag]:
    if source is not None:
        src_newest = source.newest_by_system()
        tgt_newest = target.newest_by_system() if target else {}
    else:  # unsigned repository: storage timestamps of snapshot objects, one figure for all systems
        src_newest = _newest_mtime(src)
        tgt_newest = _newest_mtime(tgt)
    return system_lags(src_newest, tgt_newest, wal_newest(src, src), wal_newest(src, tgt))


def system_lags(
    src_newest: dict[str, datetime],
    tgt_newest: dict[str, datetime],
    src_wal: dict[str, datetime],
    tgt_wal: dict[str, datetime],
) -> list[SystemLag]:
    """Per system, the snapshot lag and the recovery-point lag, from the newest of each at both sites."""
    lags = []
    for system in sorted(set(src_newest) | set(src_wal)):
        newest, there = src_newest.get(system), tgt_newest.get(system)
        lag = None if there is None or newest is None else max(0.0, (newest - there).total_seconds())
        point = _later(newest, src_wal.get(system))
        reached = _later(there, tgt_wal.get(system))
        point_lag = None if reached is None or point is None else max(0.0, (point - reached).total_seconds())
        lags.append(SystemLag(system, newest, there, lag, point_lag))
    return lags


def wal_newest(source: dict[str, ObjectInfo], held: dict[str, ObjectInfo]) -> dict[str, datetime]:
    """Per system, when the newest WAL object ``held`` has (of those at the source) was archived.

    The source's storage time of each object, wherever it is held, so both sites are measured
    on one clock: a copy's own time at the target says when it was copied, not archived.
    """
    newest: dict[str, float] = {}
    for key in held:
        info = source.get(key)
        if info is None or not is_wal_object(info):  # a planted object moves no recovery point
            continue
        system = key.split("/", 2)[1]
        newest[system] = max(newest.get(system, 0.0), info.mtime)
    return {system: datetime.fromtimestamp(mtime, UTC) for system, mtime in newest.items()}


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def _newest_mtime(listing: dict[str, ObjectInfo]) -> dict[str, datetime]:
    times = [i.mtime for k, i in listing.items() if k.startswith("snapshots/")]
    return {"*": datetime.fromtimestamp(max(times)).astimezone()} if times else {}
