"""backup/digests.py: lane hashing must give exactly hashlib's SHA-256 and MD5."""

from __future__ import annotations

import hashlib
import mmap
import random

import pytest

from backup import digests
from backup.digests import LANES, digest_all

# every tail length around the 55/56-byte padding boundary and the 64-byte block edge
EDGE_LENGTHS = [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 4096, 65 * 1024 + 7]


def _expected(buffers: list[bytes]) -> list[tuple[bytes, bytes]]:
    return [(hashlib.sha256(b).digest(), hashlib.md5(b, usedforsecurity=False).digest()) for b in buffers]


def test_the_lanes_are_built_and_used_on_this_machine() -> None:
    # the benchmark host has AVX-512; a silent fallback to hashlib would lose the speed-up unseen
    assert digests._native is not None, "backup/_digests.c was not compiled (pip install -e .)"
    assert LANES in (1, 16)


@pytest.mark.parametrize("count", [1, 2, 3, 5, 16, 17, 40])
def test_many_buffers_of_mixed_lengths_match_hashlib(count: int) -> None:
    rng = random.Random(count)
    blob = rng.randbytes(300_000)
    buffers = [
        blob[rng.randrange(0, 64) :][: rng.choice([*EDGE_LENGTHS, rng.randrange(0, 250_000)])] for _ in range(count)
    ]
    got = digest_all(buffers, md5=True)
    assert [(d.sha256, d.md5) for d in got] == _expected(buffers)
    assert [d.hex for d in got] == [hashlib.sha256(b).hexdigest() for b in buffers]


def test_every_tail_length_in_lanes_and_without() -> None:
    rng = random.Random(7)
    buffers = [rng.randbytes(n) for n in range(0, 200)]
    expected = _expected(buffers)
    assert [(d.sha256, d.md5) for d in digest_all(buffers, md5=True)] == expected
    if digests._native is not None:
        scalar = digests._native.digests(buffers, lanes=False)
        assert scalar == expected


def test_md5_is_only_computed_when_asked() -> None:
    got = digest_all([b"a" * 100] * 4)
    assert all(d.md5 is None for d in got)
    assert got[0].sha256 == hashlib.sha256(b"a" * 100).digest()


def test_mapped_files_and_memoryviews_hash_like_bytes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(3)
    paths = []
    for n in range(4):
        path = tmp_path / f"obj{n}"
        path.write_bytes(rng.randbytes(70_000 + n))
        paths.append(path)
    maps = []
    for path in paths:
        with open(path, "rb") as f:
            maps.append(mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ))
    try:
        views = [memoryview(path.read_bytes()) for path in paths]
        assert [d.sha256 for d in digest_all(maps)] == [hashlib.sha256(p.read_bytes()).digest() for p in paths]
        assert [d.sha256 for d in digest_all(views)] == [d.sha256 for d in digest_all(maps)]
    finally:
        for m in maps:
            m.close()


def test_a_non_buffer_is_refused() -> None:
    with pytest.raises(TypeError):
        digest_all(["not bytes"] * 4)  # type: ignore[list-item]


def test_mixed_sizes_keep_their_order_whichever_path_hashes_them() -> None:
    # one buffer far larger than the rest goes through OpenSSL, the others share lanes
    buffers = [b"a" * 9_000_000, *(bytes([i]) * (1000 + 7919 * i) for i in range(20)), b""]
    got = digest_all(buffers, md5=True)
    assert [d.sha256 for d in got] == [hashlib.sha256(b).digest() for b in buffers]
    assert [d.md5 for d in got] == [hashlib.md5(b).digest() for b in buffers]
