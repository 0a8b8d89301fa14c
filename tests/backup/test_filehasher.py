"""backup/filehasher.py and the FileLanes type: files hashed in lanes must give hashlib's SHA-256."""

from __future__ import annotations

import hashlib
import os
import random
import time
from pathlib import Path

import pytest

from backup.filehasher import FileHasher, lanes_available

pytestmark = pytest.mark.skipif(not lanes_available(), reason="no AVX-512 lanes on this CPU")

# around the 64-byte block, the 55/56-byte padding edge and the 128 KiB segment
SIZES = [0, 1, 55, 56, 63, 64, 65, 4096, 131_071, 131_072, 131_073, 262_144 + 56, 1_000_000, 3 * 131_072 + 63]


def _write(directory: Path, sizes: list[int]) -> list[Path]:
    rng = random.Random(len(sizes))
    directory.mkdir(exist_ok=True)
    paths = []
    for i, size in enumerate(sizes):
        path = directory / f"{i:03d}"
        path.write_bytes(rng.randbytes(size))
        paths.append(path)
    return paths


def test_more_files_than_lanes_of_every_edge_size_match_hashlib(tmp_path: Path) -> None:
    rng = random.Random(7)
    sizes = SIZES + [rng.randrange(0, 2_000_000) for _ in range(30)]
    paths = _write(tmp_path / "f", sizes)
    hasher = FileHasher()
    tickets = [hasher.add(str(p)) for p in paths]
    hasher.close()
    for path, ticket in zip(paths, tickets, strict=True):
        assert ticket.wait().error is None
        assert (ticket.sha256, ticket.size) == (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_size)


def test_files_that_cannot_be_read_are_reported_not_hashed(tmp_path: Path) -> None:
    good = _write(tmp_path / "f", [100_000])[0]
    hasher = FileHasher()
    missing = hasher.add(str(tmp_path / "gone"))
    directory = hasher.add(str(tmp_path / "f"))  # opens, but pread fails: EISDIR
    fine = hasher.add(str(good))
    hasher.close()
    assert missing.wait().sha256 is None and missing.error == os.strerror(2)
    assert directory.wait().sha256 is None and directory.error == os.strerror(21)
    assert fine.wait().sha256 == hashlib.sha256(good.read_bytes()).hexdigest()


def test_a_filling_hasher_waits_for_company_then_hashes_everything(tmp_path: Path) -> None:
    paths = _write(tmp_path / "f", [200_000] * 7)
    hasher = FileHasher(fill=4)
    first = [hasher.add(str(p)) for p in paths[:3]]
    time.sleep(0.3)  # three files are not enough: the lanes would run mostly idle
    assert not any(t._done.is_set() for t in first)
    rest = [hasher.add(str(p)) for p in paths[3:]]
    assert all(t.wait().sha256 for t in first + rest[:1])  # the fourth file starts the lanes
    hasher.close()  # and closing hashes what is left, however few
    for path, ticket in zip(paths, first + rest, strict=True):
        assert ticket.wait().sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_symlink_is_not_followed(tmp_path: Path) -> None:
    real = _write(tmp_path / "f", [1000])[0]
    (tmp_path / "link").symlink_to(real)
    hasher = FileHasher()
    ticket = hasher.add(str(tmp_path / "link"))
    hasher.close()
    assert ticket.wait().sha256 is None and ticket.error == os.strerror(40)  # ELOOP


def test_abandoning_finishes_every_ticket(tmp_path: Path) -> None:
    paths = _write(tmp_path / "f", [4_000_000] * 40)
    hasher = FileHasher()
    tickets = [hasher.add(str(p)) for p in paths]
    hasher.close(abandon=True)
    outcomes = [t.wait() for t in tickets]
    assert all(
        t.sha256 == hashlib.sha256(p.read_bytes()).hexdigest() or t.error == "abandoned"
        for t, p in zip(outcomes, paths, strict=True)
    )
    with pytest.raises(RuntimeError, match="closed"):
        hasher.add(str(paths[0]))


def test_file_lanes_refuse_misuse() -> None:
    from backup._digests import FileLanes

    with pytest.raises(ValueError, match="multiple of 64"):
        FileLanes(100)
    lanes = FileLanes(64)
    fds = [os.open(os.devnull, os.O_RDONLY) for _ in range(17)]
    try:
        for fd in fds[:16]:
            lanes.add(fd, fd)
        assert lanes.free() == 0
        with pytest.raises(RuntimeError, match="busy"):
            lanes.add(fds[16], 16)
        done = lanes.run(1 << 20)
        assert sorted(key for key, *_ in done) == sorted(fds[:16])
        assert {(sha, size, err) for _, sha, size, err in done} == {(hashlib.sha256(b"").digest(), 0, 0)}
        assert lanes.free() == 16
    finally:
        for fd in fds:
            os.close(fd)
