"""The index cache's answer to "is this blob stored?" with several connections on one file."""

from __future__ import annotations

import os
from pathlib import Path

from backup.cache import BlobCache
from backup.index import IndexedPack, IndexFile
from backup.pack import BlobEntry


def _index(ids: list[bytes]) -> IndexFile:
    entries = tuple(BlobEntry(i, 0, 0, n * 10, 10, 10) for n, i in enumerate(ids))
    return IndexFile((IndexedPack(os.urandom(32).hex(), 0, b"s" * 16, 10 * len(ids), entries),))


def test_a_blob_another_connection_indexed_after_the_filter_was_filled_is_stored(tmp_path: Path) -> None:
    """A backup's forked workers index blobs through their own connection to the cache the
    leader already consulted: the leader must count those blobs as stored (else the next
    backup re-reads every unchanged file and stores its blobs again)."""
    leader, worker = BlobCache(tmp_path / "cache.db"), BlobCache(tmp_path / "cache.db")
    try:
        known, added = [os.urandom(32) for _ in range(3)], [os.urandom(32) for _ in range(200)]
        leader.add_index("a" * 64, _index(known))
        assert all(leader.has(i) for i in known)  # the leader's filter is filled now
        worker.add_index("b" * 64, _index(added))
        assert all(leader.has(i) for i in added)
        assert not leader.has(os.urandom(32))
        leader.add_index("c" * 64, _index(mine := [os.urandom(32)]))  # its own commits still count
        assert leader.has(mine[0]) and worker.has(mine[0])
    finally:
        leader.close()
        worker.close()
