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


class Rejudge:
    """Judges damaged-looking snapshots of one check again (see the module docstring)."""

    def __init__(self, repo: Repository, listing: Mapping[str, ObjectInfo], judge: SnapshotJudge) -> None:
        self._repo = repo
        self._listing = listing
        self._judge = judge
        #: packs beyond the view, by name: whether stored with their indexed size (stat once each)
        self._newer: dict[str, bool] = {}
        #: a prune kept its lease through a whole wait: the next snapshot does not wait again
        self._outwaited = False

    def verdicts(self, snapshot: Snapshot) -> list[TreeVerdict] | None:
        """The snapshot's verdicts on a cache no rebuild is under way in; None if it was forgotten.

        Once any prune let go of its lease, this process brings the cache in line with the
        stored index files (again while another process wiped it during the sync), and the
        snapshot is judged anew unless it was forgotten; a verdict counts only if no wipe came
        while judging. Packs only index files newer than the view name count as readable where
        they are stored with their indexed size, as in ``check``'s pack pass.
        """
        repo = self._repo
        verdicts = self._judge.trees(snapshot)
        for _ in range(REJUDGE_TRIES):
            if not self._outwaited:
                self._outwaited = wait_for_prune(repo)
            if _forgotten(repo, snapshot.id):
                return None
            wipes = _synced(repo)
            verdicts = SnapshotJudge(repo, self._damage()).trees(snapshot)
            if repo.cache.wipes() == wipes:
                return None if _forgotten(repo, snapshot.id) else verdicts
        return verdicts

    def _damage(self) -> Damage:
        """The view's damage plus the packs the cache names beyond the view that are not stored as indexed."""
        base = self._judge.damage
        more = Damage(set(base.packs), set(base.blobs), set(base.resized))
        for name, blob_type, size in self._repo.cache.packs():
            key = pack_key(name, blob_type)
            if key in self._listing:
                continue
            if name not in self._newer:
                self._newer[name] = stored_as_indexed(self._repo, key, size)
            if not self._newer[name]:
                more.packs.add(name)
        return more


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
