"""Restore's buffered blob reads: the same bytes and the same refusals as ``read_blob``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backup.blobreader import BlobReader
from backup.errors import CorruptObject
from backup.pack import BLOB_DATA, FLAG_ZSTD, pack_key
from backup.run import BackupRequest, run_backup
from backup.sources import parse_source
from tests.backup.conftest import make_tree

# Compressible text and random bytes (stored raw), small and multi-chunk, so both paths run.
FILES = {
    "text.txt": b"municipal ledger row 0001;" * 40_000,
    "noise.bin": os.urandom(3 * 1024 * 1024),
    "small.txt": b"x" * 1000,
}


def _data_blobs(repo) -> list[tuple[bytes, int]]:  # type: ignore[no-untyped-def]
    blobs = []
    for name, blob_type, _size in repo.cache.packs():
        if blob_type == BLOB_DATA:
            blobs += [(row[0], row[2]) for row in repo.cache.pack_entries(name)]
    return blobs


def test_reads_every_blob_as_read_blob_does(repo, tmp_path: Path) -> None:
    run_backup(repo, BackupRequest(parse_source(f"path:{make_tree(tmp_path / 'src', FILES)}"), system="s1"))
    blobs = _data_blobs(repo)
    assert {flags & FLAG_ZSTD for _id, flags in blobs} == {0, FLAG_ZSTD}, "both stored forms must be exercised"
    reader = BlobReader(repo)
    for chunk_id, _flags in blobs + blobs[::-1]:  # growing and reusing the buffers
        assert bytes(reader.read(chunk_id)) == repo.read_blob(chunk_id)


def test_a_damaged_blob_is_refused(repo, repo_dir: Path, tmp_path: Path) -> None:
    run_backup(repo, BackupRequest(parse_source(f"path:{make_tree(tmp_path / 'src', FILES)}"), system="s1"))
    chunk_id, _flags = _data_blobs(repo)[0]
    loc = repo.cache.lookup(chunk_id)
    pack = repo_dir / pack_key(loc.pack, loc.blob_type)
    data = bytearray(pack.read_bytes())
    data[loc.offset + loc.length // 2] ^= 0x01
    pack.write_bytes(bytes(data))
    repo.backend.close()  # drop the cached descriptor of the old file
    with pytest.raises(CorruptObject, match="fails authentication"):
        BlobReader(repo).read(chunk_id)


def test_a_blob_missing_from_the_index_is_refused(repo) -> None:
    with pytest.raises(CorruptObject, match="not in any index"):
        BlobReader(repo).read(b"\x00" * 32)
