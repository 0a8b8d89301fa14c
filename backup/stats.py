"""How big snapshots are: what a restore would write, or what the repository stores for them.

``restore-size`` adds up the files each snapshot lists (a hard link's bytes counted once,
under its first name), snapshot by snapshot: the disk a restore of each would fill.
``raw-data`` counts every blob the snapshots reference once, however many files and
snapshots share it: its plaintext size (as chunked) and what it takes in storage after
compression and encryption (from the index, without reading a pack) — what deduplication
saves, and what these snapshots cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from backup.repository import Repository
from backup.snapshot import Snapshot
from backup.tree import iter_tree

StatsMode = Literal["restore-size", "raw-data"]
STATS_MODES: tuple[StatsMode, ...] = ("restore-size", "raw-data")


@dataclass(frozen=True)
class SnapshotStats:
    mode: StatsMode
    snapshots: int
    files: int
    dirs: int
    #: restore-size: bytes a restore writes; raw-data: plaintext bytes of the unique blobs
    bytes: int
    #: raw-data only: unique blobs (file content and tree metadata)
    blobs: int = 0
    #: raw-data only: what those blobs take in storage (compressed, encrypted)
    stored_bytes: int = 0
    #: raw-data only: blobs no index names (damage: ``check`` says more)
    blobs_missing: int = 0


def snapshot_stats(repo: Repository, snapshots: Sequence[Snapshot], mode: StatsMode = "restore-size") -> SnapshotStats:
    """Totals over ``snapshots`` in ``mode`` (:data:`STATS_MODES`)."""
    files = dirs = size = 0
    seen: set[bytes] = set()
    for snapshot in snapshots:
        if mode == "raw-data":
            seen.update(bytes.fromhex(blob_id) for blob_id in snapshot.tree)
        for entry in iter_tree(repo.read_blob, snapshot.tree):
            kind = entry["type"]
            dirs += kind == "dir"
            if kind != "file":
                continue
            files += 1
            if mode == "restore-size":
                size += int(entry.get("size", 0))
            else:
                seen.update(bytes.fromhex(chunk) for chunk in entry.get("chunks", ()))
    if mode == "restore-size":
        return SnapshotStats(mode, len(snapshots), files, dirs, size)
    stored = missing = 0
    for blob_id in seen:
        copies = repo.cache.locations(blob_id)
        if not copies:
            missing += 1
            continue
        size += copies[0].raw_length
        stored += copies[0].length
    return SnapshotStats(mode, len(snapshots), files, dirs, size, len(seen), stored, missing)
