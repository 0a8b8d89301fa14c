"""What ``check`` looks at: one view of the repository, listed in commit order.

Backups never lock, so a check meets repositories mid-backup. A backup writes packs, then
the index file naming them, then its snapshot (the commit), and signs the manifest when it
closes; prune writes a superseding index before it deletes what that index replaces. Listed
in the opposite order — manifest, snapshots, index files, then everything — every object a
listed layer needs was already stored when the layer below was listed, so nothing that is
merely in flight looks missing (restic's ``check`` lists snapshots and indexes before packs
for the same reason). Snapshots and index files that appear after their layer was listed
belong to a backup that had not committed when the check began: the view leaves them out,
and the packs they name count as "in no index" notes at most, never as problems.

The index cache is shared by every process on this machine and follows the repository, not
this view: :func:`take_view` syncs it after listing, so it names at least every index file
of the view, and ``check`` ignores what it holds beyond them.
"""

from __future__ import annotations

from dataclasses import dataclass

from backup.index import INDEX_PREFIX
from backup.manifest import load_manifest_bytes
from backup.repository import SNAPSHOT_PREFIX, Repository
from dc.errors import BcpError
from storage.backend import ObjectInfo
from storage.errors import ObjectNotFound


@dataclass(frozen=True)
class CheckView:
    #: the stored manifest as read first, ``None`` if there was none
    manifest: bytes | None
    #: why the manifest could not be read at all (it is then ``None``)
    manifest_error: str | None
    #: snapshot ids and index file names as listed before everything else
    snapshot_ids: frozenset[str]
    index_names: frozenset[str]
    #: every object, without snapshots and index files newer than their own listing
    listing: dict[str, ObjectInfo]
    #: the index cache's wipe count once synced (:meth:`~backup.cache.BlobCache.wipes`)
    cache_wipes: int

    def changed_under(self, repo: Repository) -> bool:
        """Whether index files of the view were deleted since, or the shared cache rebuilt."""
        return repo.cache.wipes() != self.cache_wipes or bool(self.index_names - repo.index_names())


def take_view(repo: Repository) -> CheckView:
    backend = repo.backend
    manifest: bytes | None = None
    manifest_error = None
    try:
        manifest = load_manifest_bytes(backend)
    except ObjectNotFound:
        pass
    except BcpError as exc:
        manifest_error = exc.message
    snapshots = {info.key for info in backend.list(SNAPSHOT_PREFIX)}
    indexes = {info.key for info in backend.list(INDEX_PREFIX)}
    listing = {
        info.key: info
        for info in backend.list("")
        if info.key in snapshots or info.key in indexes or not info.key.startswith((SNAPSHOT_PREFIX, INDEX_PREFIX))
    }
    repo.sync_index()
    return CheckView(
        manifest=manifest,
        manifest_error=manifest_error,
        snapshot_ids=frozenset(k.removeprefix(SNAPSHOT_PREFIX) for k in snapshots if k in listing),
        index_names=frozenset(k.removeprefix(INDEX_PREFIX) for k in indexes if k in listing),
        listing=listing,
        cache_wipes=repo.cache.wipes(),
    )
