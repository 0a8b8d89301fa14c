"""Naming a snapshot on the command line: ``latest``, ``latest:SYSTEM``, an id or an id prefix.

``latest:SYSTEM`` is answered from the local snapshot index (:mod:`backup.snapindex`'s
rows, each verified against the snapshot it names), after a sync that lists the repository's
snapshot names and decrypts only those this cache has not seen: the newest of a system costs
a listing and a few loads, not the decryption of every snapshot of the repository (~116,000
for a prefecture, issue 23). The sync is what makes it the newest another machine wrote too.
"""

from __future__ import annotations

from backup.errors import SnapshotNotFound
from backup.repository import Repository
from backup.snapindex import SnapshotIndex
from backup.snapshot import Snapshot, find_by_id
from dc.errors import N_


def find_snapshot(repo: Repository, ref: str) -> Snapshot:
    """Resolve ``latest``, ``latest:SYSTEM``, a full id or a unique id prefix."""
    if ref == "latest" or ref.startswith("latest:"):
        system = ref.partition(":")[2] or None
        index = SnapshotIndex(repo)
        index.sync_strictly()
        found = index.latest(system)
        if found is None:
            where = f" for system '{system}'" if system else ""
            raise SnapshotNotFound(N_("no snapshot{where} in {url}"), where=where, url=repo.backend.url)
        return found
    return find_by_id(repo, ref)
