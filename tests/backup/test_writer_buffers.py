"""A backup session writes each data pack over the buffer of one it already stored: whatever
the earlier, longer pack left in that buffer never reaches storage, and every blob reads back."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from backup.opening import init_repository, open_repository
from backup.pack import PACK_DIRS, parse_pack
from backup.writer import BlobWriter
from storage.local import LocalBackend
from tests.backup.conftest import FAST_KDF
from tests.conftest import PASSWORD

PACK_SIZE = 64 * 1024


class RecordingBackend(LocalBackend):
    """A local directory that remembers which buffer each pack it stored came from."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.pack_buffers: list[int] = []

    def save(self, key: str, data: bytes | bytearray | memoryview, **kwargs: object) -> None:
        if key.startswith(PACK_DIRS[0] + "/"):
            self.pack_buffers.append(id(memoryview(data).obj))
        super().save(key, data, **kwargs)  # type: ignore[arg-type]


@settings(max_examples=8, deadline=None, derandomize=True)
@given(st.lists(st.integers(10_000, 40_000), min_size=30, max_size=60), st.integers(0, 2**32))
def test_packs_written_over_reused_buffers_hold_only_their_own_blobs(
    tmp_path_factory: object, sizes: list[int], seed: int
) -> None:
    root = tmp_path_factory.mktemp("repo")  # type: ignore[attr-defined]
    init_repository(LocalBackend(root, create=True), PASSWORD, kdf=FAST_KDF, pack_size=PACK_SIZE)
    rng = random.Random(seed)
    # incompressible, so a pack's length follows its blobs' sizes: long packs, then short ones
    blobs = [rng.randbytes(n) for n in sorted(sizes, reverse=True)]
    backend = RecordingBackend(root)
    with open_repository(backend, PASSWORD) as repo:
        writer = BlobWriter(repo, uploaders=1)
        try:
            ids = [repo.master.chunk_id_of(b) for b in blobs]
            for chunk_id, blob in zip(ids, blobs, strict=True):
                writer.add(chunk_id, blob)
            writer.flush()
        finally:
            writer.close()
        assert [repo.read_blob(i) for i in ids] == blobs
        packs = sorted((root / PACK_DIRS[0]).rglob("*"))
        for path in (p for p in packs if p.is_file()):
            raw = path.read_bytes()
            assert hashlib.sha256(raw).hexdigest() == path.name
            parse_pack(repo.master, repo.repo_id, raw, path.name)  # the trailer is this pack's own
    # the session wrote several packs over the same few buffers
    assert len(backend.pack_buffers) >= 4
    assert len(set(backend.pack_buffers)) <= 3
