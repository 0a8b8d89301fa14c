"""The local snapshot index: which snapshots a system has, by time, without decrypting them all.

Finding a backup's parent used to load and decrypt every snapshot of the whole repository,
all systems — linear in a count that grows to ~116,000 for a prefecture's 1,452 systems under
a usual retention (issue 23). This index keeps, beside the blob index in the same local cache
file (:class:`backup.cache.BlobCache`), one row per snapshot: its group (system), source,
time and id. A parent lookup and a system's newest snapshot read one row through an SQLite
index on ``(grp, source, time_us, id)`` or ``(grp, time_us, id)``; retention reads the rows of
one system.

The cache file is local and not authenticated, so nothing it says is trusted on its own:

* every row carries an HMAC under a key derived from the repository's master key, so a row
  edited or planted without the key is detected (and dropped, and the index re-synced);
* a row is used only after the snapshot it names was loaded from the repository, which
  authenticates it (AES-GCM, object named by its SHA-256) and must agree with the row; a
  snapshot missing from the repository (forgotten since) drops its row and the next one is
  tried.

The index learns the snapshots this process writes at once, and everything else at a sync
(:func:`sync_index`): the first use of a cache without one (a rebuild), ``forget``, and
whenever a row failed verification. Between syncs it may not know a snapshot another machine
wrote; then a backup's parent is an older snapshot of the same source — still correct, it
only re-reads files the newer one had — and retention keeps more, never less.
"""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from backup.errors import CorruptObject
from backup.objectsize import OversizedObject
from backup.repository import SNAPSHOT_PREFIX, Repository
from backup.snapshot import Snapshot, current, load_snapshot
from storage.errors import ObjectNotFound

_SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshot_rows (
    id TEXT PRIMARY KEY, grp TEXT NOT NULL, source TEXT NOT NULL, time_us INTEGER NOT NULL,
    mac BLOB NOT NULL);
DROP INDEX IF EXISTS snapshot_rows_by_group;
CREATE INDEX IF NOT EXISTS snapshot_rows_by_group_time ON snapshot_rows(grp, time_us, id);
CREATE INDEX IF NOT EXISTS snapshot_rows_by_source_time ON snapshot_rows(grp, source, time_us, id);
CREATE INDEX IF NOT EXISTS snapshot_rows_by_time ON snapshot_rows(time_us, id);
CREATE TABLE IF NOT EXISTS snapshot_syncs (count INTEGER NOT NULL);
"""
# Each question is answered by walking one index from its end, never by sorting or scanning
# the rows of a group or of the repository: ``id`` in the index orders ties in time (so
# ``ORDER BY time_us DESC, id DESC LIMIT`` needs no sort of the group's rows), ``source`` in
# the second lets a parent lookup skip a system's other sources, and the third serves
# ``latest`` of the whole repository. The cache of an older version has the index on
# ``(grp, time_us)`` alone, which the planner preferred; it is dropped.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAC_INFO = b"bcpctl/v1/local-snapshot-index"


@dataclass(frozen=True)
class Row:
    id: str
    group: str
    source: str
    time_us: int
    mac: bytes


@dataclass
class SyncReport:
    added: int = 0
    dropped: int = 0
    #: snapshot objects that could not be loaded, and why
    unreadable: dict[str, CorruptObject] = field(default_factory=dict)


def _source(snapshot: Snapshot) -> str:
    return f"{snapshot.source_kind}:{snapshot.source_spec}"


def _micros(when: datetime) -> int:
    return (when - _EPOCH) // timedelta(microseconds=1)


class SnapshotIndex:
    """The snapshot rows of one repository's local cache; thread-safe through the cache's lock."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self._db: sqlite3.Connection = repo.cache.connection()
        self._lock = repo.cache.locked()
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=repo.repo_id, info=_MAC_INFO)
        self._mac_key = hkdf.derive(repo.master.encryption)
        with self._lock:
            self._db.executescript(_SCHEMA)

    # -- rows and their MACs ----------------------------------------------------------------

    def _mac(self, snapshot_id: str, group: str, source: str, time_us: int) -> bytes:
        fields = "\0".join((snapshot_id, group, source, str(time_us))).encode("utf-8", "surrogateescape")
        return hmac.new(self._mac_key, fields, hashlib.sha256).digest()

    def _genuine(self, row: Row) -> bool:
        return hmac.compare_digest(row.mac, self._mac(row.id, row.group, row.source, row.time_us))

    def add(self, snapshot: Snapshot) -> None:
        """Learn a snapshot just written or loaded (authenticated by the caller)."""
        group, source, time_us = snapshot.group, _source(snapshot), _micros(snapshot.time)
        mac = self._mac(snapshot.id, group, source, time_us)
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO snapshot_rows VALUES (?,?,?,?,?)", (snapshot.id, group, source, time_us, mac)
            )

    def drop(self, ids: list[str]) -> None:
        with self._lock:
            self._db.executemany("DELETE FROM snapshot_rows WHERE id=?", [(i,) for i in ids])

    def synced(self) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM snapshot_syncs").fetchone() is not None

    def _rows(self, sql: str, args: tuple[object, ...]) -> Iterator[Row]:
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        for row in rows:
            yield Row(*row)

    def _verified(self, row: Row) -> Snapshot | None:
        """The snapshot a row names, loaded from the repository and agreeing with the row; else None
        (the row is dropped; a forged one also asks for a sync)."""
        if not self._genuine(row):
            self.drop([row.id])
            self._mark_unsynced()
            return None
        try:
            snapshot = load_snapshot(self.repo, row.id)
        except (ObjectNotFound, CorruptObject):
            self.drop([row.id])
            return None
        if (snapshot.group, _source(snapshot), _micros(snapshot.time)) != (row.group, row.source, row.time_us):
            self.drop([row.id])
            self._mark_unsynced()
            return None
        return snapshot

    def _mark_unsynced(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM snapshot_syncs")

    # -- the questions ------------------------------------------------------------------------

    def newest(self, group: str, source: str | None = None) -> Snapshot | None:
        """The newest snapshot of ``group`` (of ``source`` if given) that the repository holds."""
        self.ensure()
        where, args = "grp=?", [group]
        if source is not None:
            where, args = where + " AND source=?", [*args, source]
        while True:
            query = f"SELECT * FROM snapshot_rows WHERE {where} ORDER BY time_us DESC, id DESC LIMIT 8"
            rows = list(self._rows(query, tuple(args)))
            if not rows:
                return None
            for row in rows:
                if (snapshot := self._verified(row)) is not None:
                    return snapshot
            # every row of that page was dropped: the next page is now first

    def of_group(self, group: str) -> list[Snapshot]:
        """Every snapshot of ``group`` the index knows, verified, oldest first: retention's view."""
        self.ensure()
        found = []
        for row in self._rows("SELECT * FROM snapshot_rows WHERE grp=? ORDER BY time_us, id", (group,)):
            if (snapshot := self._verified(row)) is not None:
                found.append(snapshot)
        return found

    def of_group_synced(self, group: str) -> list[Snapshot]:
        """:meth:`of_group` after a sync, for callers that must see every snapshot another process
        wrote (retention): the listing costs names only; just the snapshots new to this cache are
        decrypted (:meth:`sync_strictly`)."""
        self.sync_strictly()
        return self.of_group(group)

    def sync_strictly(self) -> None:
        """:meth:`sync`, raising for an unreadable snapshot as :func:`~backup.snapshot.list_snapshots`
        does; one far larger than any snapshot is left in ``repo.skipped_objects``."""
        for snapshot_id, exc in self.sync().unreadable.items():
            if not isinstance(exc, OversizedObject):
                raise exc
            self.repo.skipped_objects[SNAPSHOT_PREFIX + snapshot_id] = exc.message

    def latest(self, group: str | None) -> Snapshot | None:
        """``list_snapshots(repo, system=group)[-1]`` from the rows: of the snapshots of the newest
        time (of ``group``, or of any), verified, the newest one that no other of them re-labels
        (a re-label keeps its original's time, so it is always among them)."""
        self.ensure()
        where, args = ("grp=?", (group,)) if group is not None else ("1=1", ())
        while True:
            with self._lock:
                top = self._db.execute(f"SELECT max(time_us) FROM snapshot_rows WHERE {where}", args).fetchone()[0]
            if top is None:
                return None
            rows = self._rows(f"SELECT * FROM snapshot_rows WHERE {where} AND time_us=?", (*args, top))
            found = [snapshot for row in rows if (snapshot := self._verified(row)) is not None]
            if found:
                return current(sorted(found, key=lambda s: (s.time, s.id)))[-1]
            # every row of that time was dropped: the next time is now the newest

    def count(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT count(*) FROM snapshot_rows").fetchone()
        return int(count)

    # -- staying in line with the repository ---------------------------------------------------

    def ensure(self) -> None:
        """Rebuild from the repository if this cache has never been synced (or a row was forged)."""
        if not self.synced():
            self.sync()

    def sync(self) -> SyncReport:
        """Rows for exactly the snapshots the repository lists: rows of vanished ones and rows that
        fail their MAC dropped, unknown ones loaded (decrypted once) and added."""
        report = SyncReport()
        with self._lock:
            rows = [Row(*r) for r in self._db.execute("SELECT * FROM snapshot_rows")]
        listed = {info.key.removeprefix(SNAPSHOT_PREFIX): info.size for info in self.repo.backend.list(SNAPSHOT_PREFIX)}
        known = {row.id for row in rows if row.id in listed and self._genuine(row)}
        stale = [row.id for row in rows if row.id not in known]
        self.drop(stale)
        report.dropped = len(stale)
        for snapshot_id in sorted(set(listed) - known):
            try:
                snapshot = load_snapshot(self.repo, snapshot_id, size=listed[snapshot_id])
            except ObjectNotFound:
                continue
            except CorruptObject as exc:
                report.unreadable[snapshot_id] = exc
                continue
            self.add(snapshot)
            report.added += 1
        with self._lock:
            # Marked only when not marked yet: a sync that changed nothing writes nothing, or the
            # cache's first write and the checkpoint when it closes cost a read-only command
            # (restore, ls) ~40 ms of fdatasync on its single-threaded start and end.
            self._db.execute("INSERT INTO snapshot_syncs SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM snapshot_syncs)")
        return report
