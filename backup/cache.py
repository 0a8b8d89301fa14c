"""The local index cache: chunk id → pack location, in SQLite, fronted by a Bloom filter.

restic and Borg hold every chunk id of a repository in RAM, and users with big shared
repositories get OOM-killed (restic#1988). Here the ids live in an on-disk B-tree
(``WITHOUT ROWID``, ~60 bytes per chunk) and RAM holds only a Bloom filter (1 byte per chunk)
that answers "certainly new" for most new chunks without touching SQLite. The cache mirrors
the repository's index files exactly — every copy of a blob, since concurrent backups and
repacking can store one twice; it is rebuilt whenever an index file disappears, and it
never contains anything an index file in the repository does not say.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from backup.errors import CorruptObject
from backup.index import IndexFile
from dc.sqlitewal import use_wal
from storage.errors import ObjectNotFound

_SCHEMA = """
CREATE TABLE IF NOT EXISTS index_files (name TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS packs (
    no INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, type INTEGER NOT NULL,
    salt BLOB NOT NULL, size INTEGER NOT NULL, index_name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blobs (
    id BLOB NOT NULL, pack INTEGER NOT NULL, type INTEGER NOT NULL, flags INTEGER NOT NULL,
    offset INTEGER NOT NULL, length INTEGER NOT NULL, raw_length INTEGER NOT NULL,
    PRIMARY KEY (id, pack)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS blobs_by_pack ON blobs(pack);
CREATE TABLE IF NOT EXISTS wipes (count INTEGER NOT NULL);
INSERT INTO wipes SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM wipes);
"""


#: chunk ids per statement of :meth:`BlobCache.locations_of` (far below SQLite's limit of variables)
_BATCH = 256


@dataclass(frozen=True, slots=True)
class Location:
    pack: str
    blob_type: int
    salt: bytes
    flags: int
    offset: int
    length: int
    raw_length: int


@dataclass(frozen=True, slots=True)
class PackInfo:
    name: str
    blob_type: int
    salt: bytes
    size: int


class BloomFilter:
    """k=4 probes taken straight from the (uniformly random) keyed chunk id; ~1% false positives."""

    def __init__(self, expected: int) -> None:
        bits = 1 << max(16, (max(expected, 1) * 10 - 1).bit_length())
        self.mask = bits - 1
        self.bits = bytearray(bits // 8)
        self.capacity = bits // 10

    def _probes(self, chunk_id: bytes) -> Iterator[int]:
        for i in range(0, 16, 4):
            yield int.from_bytes(chunk_id[i : i + 4], "little") & self.mask

    def add(self, chunk_id: bytes) -> None:
        for bit in self._probes(chunk_id):
            self.bits[bit >> 3] |= 1 << (bit & 7)

    def __contains__(self, chunk_id: bytes) -> bool:
        return all(self.bits[bit >> 3] & (1 << (bit & 7)) for bit in self._probes(chunk_id))


#: seconds a connection waits for another process's or thread's lock on the cache
_BUSY_TIMEOUT = 60.0


class BlobCache:
    """Thread-safe; one SQLite connection guarded by a lock (lookups take microseconds)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=_BUSY_TIMEOUT)
        use_wal(self._db, _BUSY_TIMEOUT)
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._bloom: BloomFilter | None = None
        #: SQLite's ``data_version`` when the filter was filled: it changes when another
        #: connection commits (a forked worker's index, another process's sync), rows the
        #: filter has not seen; this connection's own commits pass through ``add_index``
        self._bloom_version = 0
        self._excluded_packs: frozenset[int] = frozenset()

    def close(self) -> None:
        self._db.close()

    # -- keeping the mirror exact -------------------------------------------------------

    def sync(self, list_names: Callable[[], set[str]], load: Callable[[str], IndexFile]) -> dict[str, str]:
        """Make the cache mirror the repository's index files; return ``{name: error}`` for broken ones.

        The repository is listed only after the cached names are read: a listing taken earlier
        would miss an index file that another backup (thread or process) added meanwhile, and
        its absence would wrongly look like a deletion and wipe the cache.

        Other processes share the file. An index file this sync listed may be deleted (prune)
        and the cache wiped by another process before this one adds it; counting wipes lets
        :meth:`add_index` refuse such a stale addition, which would otherwise outlive the wipe.
        """
        with self._lock:
            cached = {row[0] for row in self._db.execute("SELECT name FROM index_files")}
            wipes = self.wipes()
        names_in_repo = list_names()
        with self._lock:
            if cached - names_in_repo:
                # One transaction: an index added between the deletes would leave blob rows
                # pointing at a pack number that is reused later.
                self._db.executescript(
                    "BEGIN IMMEDIATE; DELETE FROM blobs; DELETE FROM packs; DELETE FROM index_files;"
                    " UPDATE wipes SET count = count + 1; COMMIT;"
                )
                cached = set()
                self._bloom = None
                wipes = self.wipes()
        broken: dict[str, str] = {}
        for name in sorted(names_in_repo - cached):
            try:
                index = load(name)
            except ObjectNotFound:
                continue  # removed since the listing (prune's superseded index files): the next sync drops it
            except CorruptObject as exc:
                broken[name] = exc.message
                continue
            self.add_index(name, index, listed_before=wipes)
        return broken

    def wipes(self) -> int:
        """How often any process has wiped this cache: a reader that sees it change knows the
        cache was rebuilt under it."""
        (count,) = self._db.execute("SELECT count FROM wipes").fetchone()
        return int(count)

    def add_index(self, name: str, index: IndexFile, *, listed_before: int | None = None) -> None:
        """Learn an index file. ``listed_before``: the wipe count when it was listed; if the
        cache was wiped since, it may be gone, and the next sync decides."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if listed_before is not None and self.wipes() != listed_before:
                    self._db.execute("ROLLBACK")
                    return
                for pack in index.packs:
                    self._db.execute(
                        "INSERT OR IGNORE INTO packs(name, type, salt, size, index_name) VALUES (?,?,?,?,?)",
                        (pack.name, pack.blob_type, pack.salt, pack.size, name),
                    )
                    (pack_no,) = self._db.execute("SELECT no FROM packs WHERE name=?", (pack.name,)).fetchone()
                    self._db.executemany(
                        "INSERT OR IGNORE INTO blobs VALUES (?,?,?,?,?,?,?)",
                        [(e.id, pack_no, e.type, e.flags, e.offset, e.length, e.raw_length) for e in pack.entries],
                    )
                    if self._bloom is not None:
                        for entry in pack.entries:
                            self._bloom.add(entry.id)
                self._db.execute("INSERT OR IGNORE INTO index_files VALUES (?)", (name,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def exclude_packs(self, names: Iterable[str]) -> None:
        """Packs marked for deletion by prune: their blobs count as absent for deduplication."""
        with self._lock:
            numbers = set()
            for name in names:
                row = self._db.execute("SELECT no FROM packs WHERE name=?", (name,)).fetchone()
                if row:
                    numbers.add(row[0])
            self._excluded_packs = frozenset(numbers)

    # -- queries --------------------------------------------------------------------------

    def _data_version(self) -> int:
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def _ensure_bloom(self) -> BloomFilter:
        if self._bloom is None:
            self._bloom_version = self._data_version()
            (count,) = self._db.execute("SELECT count(*) FROM blobs").fetchone()
            bloom = BloomFilter(count * 2 + 1024)
            for (chunk_id,) in self._db.execute("SELECT id FROM blobs"):
                bloom.add(chunk_id)
            self._bloom = bloom
        return self._bloom

    def has(self, chunk_id: bytes) -> bool:
        """Whether the repository already stores this blob in a pack that will stay."""
        with self._lock:
            # absent from the filter is absent from the table, unless another connection has
            # committed since the filter was filled: then the table answers
            if chunk_id not in self._ensure_bloom() and self._data_version() == self._bloom_version:
                return False
            packs = [row[0] for row in self._db.execute("SELECT pack FROM blobs WHERE id=?", (chunk_id,))]
        return any(pack not in self._excluded_packs for pack in packs)

    def locations(self, chunk_id: bytes) -> list[Location]:
        """Every stored copy of a blob, copies outside condemned packs first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT b.pack, p.name, b.type, p.salt, b.flags, b.offset, b.length, b.raw_length "
                "FROM blobs b JOIN packs p ON p.no = b.pack WHERE b.id=?",
                (chunk_id,),
            ).fetchall()
        rows.sort(key=lambda row: row[0] in self._excluded_packs)
        return [Location(*row[1:]) for row in rows]

    def locations_of(self, chunk_ids: Iterable[bytes]) -> dict[bytes, list[Location]]:
        """:meth:`locations` of many blobs, one statement per :data:`_BATCH` ids (a restore
        writer asks for a group of small files at once: one query per blob cost more CPU than
        decrypting the blob). Blobs in no index are left out."""
        wanted = list(dict.fromkeys(chunk_ids))
        found: dict[bytes, list[tuple[int, str, int, bytes, int, int, int, int]]] = {}
        with self._lock:
            for start in range(0, len(wanted), _BATCH):
                ids = wanted[start : start + _BATCH]
                for chunk_id, *row in self._db.execute(
                    "SELECT b.id, b.pack, p.name, b.type, p.salt, b.flags, b.offset, b.length, b.raw_length "
                    f"FROM blobs b JOIN packs p ON p.no = b.pack WHERE b.id IN ({','.join('?' * len(ids))})",
                    ids,
                ):
                    found.setdefault(chunk_id, []).append(tuple(row))
        excluded = self._excluded_packs
        return {
            chunk_id: [Location(*row[1:]) for row in sorted(rows, key=lambda row: row[0] in excluded)]
            for chunk_id, rows in found.items()
        }

    def lookup(self, chunk_id: bytes) -> Location | None:
        found = self.locations(chunk_id)
        return found[0] if found else None

    def packs(self) -> list[tuple[str, int, int]]:
        """``(name, type, size)`` of every indexed pack."""
        with self._lock:
            return list(self._db.execute("SELECT name, type, size FROM packs"))

    def pack_info(self, pack_name: str) -> PackInfo | None:
        """The index record of one pack (type, salt, size), or None if no index names it."""
        with self._lock:
            row = self._db.execute("SELECT type, salt, size FROM packs WHERE name=?", (pack_name,)).fetchone()
        return PackInfo(pack_name, *row) if row else None

    def index_of(self, pack_name: str) -> str | None:
        """The index file the cache learnt a pack from (the first one, if several name it)."""
        with self._lock:
            row = self._db.execute("SELECT index_name FROM packs WHERE name=?", (pack_name,)).fetchone()
        return row[0] if row else None

    def pack_entries(self, pack_name: str) -> list[tuple[bytes, int, int, int, int, int]]:
        """``(id, type, flags, offset, length, raw_length)`` of the blobs indexed in a pack."""
        with self._lock:
            return list(
                self._db.execute(
                    "SELECT b.id, b.type, b.flags, b.offset, b.length, b.raw_length FROM blobs b "
                    "JOIN packs p ON p.no = b.pack WHERE p.name=?",
                    (pack_name,),
                )
            )

    def index_files(self) -> set[str]:
        with self._lock:
            return {row[0] for row in self._db.execute("SELECT name FROM index_files")}

    def counts(self) -> tuple[int, int]:
        """``(blobs, packs)``."""
        with self._lock:
            (blobs,) = self._db.execute("SELECT count(*) FROM blobs").fetchone()
            (packs,) = self._db.execute("SELECT count(*) FROM packs").fetchone()
        return blobs, packs

    def connection(self) -> sqlite3.Connection:
        """The raw connection, for set-based work (prune's mark phase) under :meth:`locked`."""
        return self._db

    def locked(self) -> threading.Lock:
        return self._lock
