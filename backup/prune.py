"""Removing what no snapshot needs, in two phases, while backups keep running without a lock.

Phase one (mark): under the prune lease, compute the blobs every snapshot uses (streamed into
a SQLite table, not a Python set), repack packs that are mostly garbage, write an index that
supersedes the index files naming condemned packs, and record those packs and index files in
a sealed *tombstone*. Backups read tombstones at start and never deduplicate against a
condemned pack, so nothing new comes to depend on one.

Phase two (delete), in a later run once the tombstone is older than the grace period — as
measured by the storage's own clock, not the client's: recompute the used blobs; any
condemned pack that a snapshot still needs (a backup that started before the mark) is
re-indexed and spared; then the superseded index files, the packs, and the tombstone go.

A crash at any point leaves either extra objects (removed by a later prune) or nothing
changed; no committed snapshot ever loses a blob. A format-2 manifest gets prune's checkpoint,
after which the links no verification reads any more go (:mod:`backup.chainprune`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from backup.chainprune import remove_old_links
from backup.errors import CorruptObject
from backup.index import INDEX_PREFIX, IndexedPack, encode_index, split_index
from backup.locks import LOCKS_PREFIX, RepositoryLock
from backup.manifest import sign_manifest
from backup.manifestchain import Link
from backup.pack import PACK_DIRS, PackBuilder, iter_blobs, pack_key
from backup.repository import Repository
from backup.snapshot import list_snapshots
from backup.tree import iter_tree
from dc.errors import N_
from dc.failpoint import failpoint
from storage.capabilities import as_capability
from storage.errors import ObjectNotFound
from storage.local import LocalBackend

TOMBSTONE_PREFIX = "tombstones/"
LEASE_KEY = LOCKS_PREFIX + "prune"
#: renewed every quarter of it while prune runs; a holder on another machine that died blocks at most this long
LEASE_TTL_SECONDS = 30 * 60


@dataclass
class PruneReport:
    snapshots: int = 0
    blobs_used: int = 0
    packs_total: int = 0
    packs_marked: int = 0
    packs_repacked: int = 0
    packs_spared: int = 0
    packs_deleted: int = 0
    unindexed_packs_deleted: int = 0
    index_files_deleted: int = 0
    bytes_freed: int = 0
    tombstones_pending: int = 0
    #: temporaries of killed writers (a killed ``wal push``) removed from a local repository
    leftovers_removed: int = 0
    #: format-2 manifest links no verification reads any more (:mod:`backup.chainprune`)
    links_removed: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Tombstone:
    name: str
    mtime: float
    packs: tuple[str, ...]
    indexes: tuple[str, ...]


def read_tombstones(repo: Repository) -> list[Tombstone]:
    found = []
    for info in repo.backend.list(TOMBSTONE_PREFIX):
        name = info.key.removeprefix(TOMBSTONE_PREFIX)
        try:
            doc = orjson.loads(repo.load_sealed(TOMBSTONE_PREFIX, "tombstone", name))
        except ObjectNotFound:
            continue
        found.append(Tombstone(name, info.mtime, tuple(doc["packs"]), tuple(doc["indexes"])))
    return found


def condemned_packs(repo: Repository) -> set[str]:
    """Packs a backup must not deduplicate against."""
    return {pack for stone in read_tombstones(repo) for pack in stone.packs}


def _collect_used(repo: Repository, report: PruneReport) -> None:
    """Fill the temp table ``used`` with every blob id a snapshot needs; refuse on damage."""
    db = repo.cache.connection()
    with repo.cache.locked():
        db.execute("CREATE TEMP TABLE IF NOT EXISTS used (id BLOB PRIMARY KEY) WITHOUT ROWID")
        db.execute("DELETE FROM used")
    errors: dict[str, str] = {}
    snapshots = list_snapshots(repo, errors=errors, superseded=True)
    if errors:
        raise CorruptObject(
            N_("snapshot {next} is unreadable; run 'bcpctl check' before pruning"), next=next(iter(errors))[:8]
        )
    report.snapshots = len(snapshots)
    seen_trees: set[str] = set()
    for snapshot in snapshots:
        batch: list[tuple[bytes]] = []
        for tree_id in snapshot.tree:
            batch.append((bytes.fromhex(tree_id),))
            if tree_id in seen_trees:
                continue
            seen_trees.add(tree_id)
            for entry in iter_tree(repo.read_blob, (tree_id,)):
                batch.extend((bytes.fromhex(c),) for c in entry.get("chunks", ()))
        with repo.cache.locked():
            db.executemany("INSERT OR IGNORE INTO used VALUES (?)", batch)
    with repo.cache.locked():
        (report.blobs_used,) = db.execute("SELECT count(*) FROM used").fetchone()
        (missing,) = db.execute(
            "SELECT count(*) FROM used u WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.id=u.id)"
        ).fetchone()
    if missing:
        raise CorruptObject(
            N_("{missing} blob(s) used by snapshots are not indexed; run 'bcpctl check' before pruning"),
            missing=missing,
        )


def _collect_used_or_refuse(repo: Repository, report: PruneReport) -> None:
    """:func:`_collect_used`, refusing while the index cannot be trusted to name every needed pack.

    The mark phase deletes packs that no index names. With an index file unreadable, or a blob
    a snapshot needs named by no index (its index file lost), such a pack may hold the only
    copy of reachable data: prune then deletes nothing and names the repair.
    """
    advice = "prune deleted nothing; run 'bcpctl repair index', then 'bcpctl check'"
    if repo.broken_indexes:
        name = sorted(repo.broken_indexes)[0]
        raise CorruptObject(
            N_("index file {name} is unreadable, so packs it names look unused: {advice}"),
            name=name[:16],
            advice=advice,
        )
    try:
        _collect_used(repo, report)
    except CorruptObject as exc:
        raise CorruptObject(N_("{message_}: {advice}"), message_=exc.message.split(";")[0], advice=advice) from None


def _pack_usage(repo: Repository) -> list[tuple[str, int, int, int, int, str]]:
    """``(name, type, size, blobs, used blobs, index file)`` per indexed pack."""
    with repo.cache.locked():
        return list(
            repo.cache.connection().execute(
                "SELECT p.name, p.type, p.size, count(b.id), count(u.id), p.index_name FROM packs p "
                "LEFT JOIN blobs b ON b.pack = p.no LEFT JOIN used u ON u.id = b.id GROUP BY p.no"
            )
        )


def _still_needed(repo: Repository, doomed: set[str]) -> list[str]:
    """Condemned packs holding a used blob of which no copy survives outside the condemned set."""
    db = repo.cache.connection()
    with repo.cache.locked():
        db.execute("CREATE TEMP TABLE IF NOT EXISTS doomed (no INTEGER PRIMARY KEY)")
        db.execute("DELETE FROM doomed")
        db.executemany("INSERT INTO doomed SELECT no FROM packs WHERE name=?", [(n,) for n in doomed])
        rows = db.execute(
            "SELECT DISTINCT p.name FROM blobs b JOIN packs p ON p.no = b.pack JOIN doomed d ON d.no = b.pack "
            "WHERE b.id IN (SELECT id FROM used) AND NOT EXISTS ("
            "  SELECT 1 FROM blobs c WHERE c.id = b.id AND c.pack NOT IN (SELECT no FROM doomed))"
        ).fetchall()
    return sorted(row[0] for row in rows)


def _indexed_pack(repo: Repository, name: str) -> IndexedPack:
    """A pack's index record rebuilt from its own header (used to re-index a spared pack)."""
    key = None
    for blob_type in PACK_DIRS:
        try:
            repo.backend.stat(pack_key(name, blob_type))
            key = pack_key(name, blob_type)
            break
        except ObjectNotFound:
            continue
    if key is None:
        raise CorruptObject(N_("pack {name} vanished"), name=name[:16])
    data = repo.load_pack(key)
    entries = tuple(entry for entry, _payload in iter_blobs(repo.master, repo.repo_id, data, key))
    return IndexedPack(name, entries[0].type if entries else 0, data[8:40], len(data), entries)


def _repack(repo: Repository, names: list[tuple[str, int]]) -> list[IndexedPack]:
    """Copy the used blobs of mostly-garbage packs into fresh packs (re-encrypted, not recompressed)."""
    db = repo.cache.connection()
    builders: dict[int, PackBuilder] = {}
    written: list[IndexedPack] = []

    def ship(builder: PackBuilder) -> None:
        pack = builder.finish()
        repo.backend.save(pack.key, pack.data)
        written.append(IndexedPack(pack.name, pack.blob_type, pack.salt, len(pack.data), pack.entries))

    for name, blob_type in names:
        key = pack_key(name, blob_type)
        data = repo.load_pack(key)
        for entry, payload in iter_blobs(repo.master, repo.repo_id, data, key):
            with repo.cache.locked():
                needed = db.execute("SELECT 1 FROM used WHERE id=?", (entry.id,)).fetchone()
            if not needed:
                continue
            builder = builders.get(entry.type)
            if builder is None:
                builder = builders[entry.type] = PackBuilder(
                    repo.master, repo.repo_id, entry.type, capacity=repo.config.pack_size + repo.config.chunker.max
                )
            builder.add(entry.id, payload, entry.flags, entry.raw_length)
            if len(builder) >= repo.config.pack_size:
                ship(builders.pop(entry.type))
    for builder in builders.values():
        if builder.entries:
            ship(builder)
    return written


def prune(repo: Repository, *, grace_seconds: int, max_unused: float = 0.25) -> PruneReport:
    report = PruneReport()
    with RepositoryLock(repo.backend, "prune", ttl=LEASE_TTL_SECONDS) as lock:
        storage_now = lock.storage_now
        report.notes += lock.notes
        repo.sync_index()
        _collect_used_or_refuse(repo, report)
        # Signed only once prune can change something: a refused prune must not sign a damaged
        # state as the committed one (the manifest is what tells check an index file is missing).
        repo.state_changed = True
        repo.journal.checkpoint()  # packs and index files change wholesale: a full state
        stones = read_tombstones(repo)
        due = [t for t in stones if storage_now - t.mtime >= grace_seconds]
        pending = [t for t in stones if t not in due]
        lock.ensure_held()
        _delete_phase(repo, due, report)
        already_condemned = {p for t in pending for p in t.packs}
        lock.ensure_held()
        _mark_phase(repo, already_condemned, grace_seconds, storage_now, max_unused, report)
        if grace_seconds == 0:
            # No grace asked for: the marks just made are already due.
            fresh = [t for t in read_tombstones(repo) if t.name not in {p.name for p in pending}]
            lock.ensure_held()
            _delete_phase(repo, fresh, report)
        report.tombstones_pending = len(read_tombstones(repo))
        if (local := as_capability(repo.backend, LocalBackend)) is not None:
            report.leftovers_removed = len(local.remove_leftovers())
        # Signed before the lease goes: index files were removed above, and a check waits for the
        # lease, not for this session's close, before it asks the manifest whether they still count.
        failpoint("prune.before-checkpoint")
        signed = sign_manifest(repo)
        if isinstance(signed, Link):  # format 2: the checkpoint just signed leaves older links unread
            failpoint("prune.before-links")
            report.links_removed = len(remove_old_links(repo.backend, signed, datetime.fromtimestamp(storage_now, UTC)))
    return report


def _delete_phase(repo: Repository, due: list[Tombstone], report: PruneReport) -> None:
    if not due:
        return
    usage = {row[0]: row for row in _pack_usage(repo)}
    spared = _still_needed(repo, {name for stone in due for name in stone.packs})
    if spared:
        # A backup that started before the mark reused these: keep them, indexed afresh.
        for index in split_index([_indexed_pack(repo, name) for name in spared]):
            repo.save_sealed(INDEX_PREFIX, "index", encode_index(index))
        report.packs_spared += len(spared)
    for stone in due:
        for index_name in stone.indexes:
            repo.backend.remove(INDEX_PREFIX + index_name)
            report.index_files_deleted += 1
        failpoint("prune.after-index-delete")
        for name in stone.packs:
            if name in spared:
                continue
            row = usage.get(name)
            blob_type = row[1] if row else None
            for t in [blob_type] if blob_type is not None else list(PACK_DIRS):
                try:
                    size = repo.backend.stat(pack_key(name, t)).size
                except ObjectNotFound:
                    continue
                repo.backend.remove(pack_key(name, t))
                report.packs_deleted += 1
                report.bytes_freed += size
        repo.backend.remove(TOMBSTONE_PREFIX + stone.name)
    repo.sync_index()


def _mark_phase(
    repo: Repository, already: set[str], grace_seconds: int, storage_now: float, max_unused: float, report: PruneReport
) -> None:
    usage = _pack_usage(repo)
    report.packs_total = len(usage)
    condemned: list[str] = []
    to_repack: list[tuple[str, int]] = []
    for name, blob_type, size, blobs, used, _index in usage:
        if name in already:
            continue
        if used == 0:
            condemned.append(name)
        elif blobs and (blobs - used) / blobs > max_unused and size > 0:
            to_repack.append((name, blob_type))
    # Crash leftovers: packs no index names, old enough that no running backup can still index them.
    indexed = {row[0] for row in usage}
    for directory in PACK_DIRS.values():
        for info in repo.backend.list(directory + "/"):
            name = info.key.rsplit("/", 1)[-1]
            if name not in indexed and storage_now - info.mtime >= grace_seconds:
                repo.backend.remove(info.key)  # where it is, which may not be where its name belongs
                report.unindexed_packs_deleted += 1
                report.bytes_freed += info.size
    if not condemned and not to_repack:
        return
    new_packs = _repack(repo, to_repack)
    report.packs_repacked = len(to_repack)
    condemned += [name for name, _ in to_repack]
    report.packs_marked = len(condemned)
    doomed = set(condemned)
    # Rewrite every index file that names a condemned pack, without those packs.
    affected: set[str] = set()
    keep: list[IndexedPack] = list(new_packs)
    for index_name in sorted(repo.cache.index_files()):
        index = repo.load_index(index_name)
        if any(p.name in doomed for p in index.packs):
            affected.add(index_name)
            # Packs condemned by an earlier, still-pending tombstone must not be re-indexed either.
            keep += [p for p in index.packs if p.name not in doomed and p.name not in already]
    for index in split_index(keep, sorted(affected)):
        repo.save_sealed(INDEX_PREFIX, "index", encode_index(index))
    failpoint("prune.before-tombstone")
    stone = orjson.dumps({"packs": sorted(doomed), "indexes": sorted(affected)})
    repo.save_sealed(TOMBSTONE_PREFIX, "tombstone", stone)
