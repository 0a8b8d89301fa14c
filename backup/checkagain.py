"""Judging a snapshot again when it looked damaged while a prune rebuilt the shared index cache.

``check`` takes no lock (it never writes), so a prune may delete index files while it runs;
every process that syncs the shared index cache afterwards empties it and refills it one index
file at a time. A snapshot judged in that window has blobs in no index although it still exists
and its data is stored. Before such a snapshot is called damaged it is judged once more on a
cache that names every stored index file and that no rebuild touched meanwhile; a snapshot
forgotten since is not judged at all (prune may rightly have taken its data).
"""

from __future__ import annotations

from collections.abc import Mapping

from backup.damage import Damage, SnapshotJudge, TreeVerdict
from backup.inventory import wait_for_prune
from backup.pack import pack_key
from backup.repository import SNAPSHOT_PREFIX, Repository
from backup.snapshot import Snapshot
from storage.backend import ObjectInfo
from storage.errors import ObjectNotFound

#: how often a damaged-looking snapshot is judged again while cache rebuilds keep coming
REJUDGE_TRIES = 5


def judged_again(
    repo: Repository, listing: Mapping[str, ObjectInfo], judge: SnapshotJudge, snapshot: Snapshot
) -> list[TreeVerdict] | None:
    """A damaged-looking snapshot judged again, on a cache no rebuild is under way in; None if forgotten.

    A prune that deleted index files empties the shared index cache and refills it one index
    file at a time; judged meanwhile, blobs of a snapshot that still exists are in no index.
    So once any prune let go of its lease, the cache is brought in line with the stored index
    files by this process (again while another process wiped it during the sync), and the
    snapshot is judged anew unless it was forgotten; a verdict counts only if no wipe came
    while judging. Packs only index files newer than the view name count as readable where
    they are stored with their indexed size, as in :func:`backup.check._check_packs`.
    """
    verdicts = judge.trees(snapshot)
    for _ in range(REJUDGE_TRIES):
        wait_for_prune(repo)
        if _forgotten(repo, snapshot.id):
            return None
        wipes = _synced(repo)
        damage = _with_newer_packs(repo, listing, judge.damage)
        verdicts = SnapshotJudge(repo, damage).trees(snapshot)
        if repo.cache.wipes() == wipes:
            return None if _forgotten(repo, snapshot.id) else verdicts
    return verdicts


def _synced(repo: Repository) -> int:
    """Sync the index cache until no wipe came during the sync (it then names every stored index file)."""
    wipes = repo.cache.wipes()
    for _ in range(REJUDGE_TRIES):
        repo.sync_index()
        now = repo.cache.wipes()
        if now == wipes:
            break
        wipes = now
    return wipes


def _with_newer_packs(repo: Repository, listing: Mapping[str, ObjectInfo], damage: Damage) -> Damage:
    """``damage`` plus the packs the cache names beyond the view that are not stored as indexed."""
    more = Damage(set(damage.packs), set(damage.blobs), set(damage.resized))
    for name, blob_type, size in repo.cache.packs():
        key = pack_key(name, blob_type)
        if key not in listing and not stored_as_indexed(repo, key, size):
            more.packs.add(name)
    return more


def _forgotten(repo: Repository, snapshot_id: str) -> bool:
    try:
        repo.backend.stat(SNAPSHOT_PREFIX + snapshot_id)
    except ObjectNotFound:
        return True
    return False


def stored_as_indexed(repo: Repository, key: str, size: int) -> bool:
    try:
        return repo.backend.stat(key).size == size
    except ObjectNotFound:
        return False
