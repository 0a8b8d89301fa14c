"""backup/restorer.py: which process restores what, and that every file is verified."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backup import restorefiles, restoreplan
from backup.errors import VerificationFailed
from backup.forked import Claims
from backup.restorer import restore_snapshot
from backup.run import BackupRequest, run_backup
from backup.snapref import find_snapshot
from backup.sources import parse_source
from tests.backup.conftest import make_tree, tree_digest

FILES: dict[str, bytes | str] = {
    **{f"small/{i:03d}.txt": f"row {i}\n" * (i * 37) for i in range(60)},
    **{f"big/{i}.bin": os.urandom(300_000 + i) for i in range(5)},
    "mixed/a.txt": "a",
    "mixed/huge.bin": os.urandom(700_000),
    "mixed/z.txt": "z",
}


@pytest.fixture
def snapshot(repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    # units of 256 KiB: the files of 300 KB and more are "big" and go first
    monkeypatch.setattr(restoreplan, "UNIT_BYTES", 256 * 1024)
    src = make_tree(tmp_path / "src", FILES)
    result = run_backup(repo, BackupRequest(parse_source(f"path:{src}"), system="s1"))
    assert result.errors == []
    return src, find_snapshot(repo, "latest:s1")


def test_big_files_come_first_and_every_file_exactly_once(repo, snapshot) -> None:  # type: ignore[no-untyped-def]
    _, snap = snapshot
    shape = restoreplan.validate_tree(repo, snap)
    names = [_name(entry["path"]) for entry in restoreplan.claimed_files(repo, snap, Claims(), shape)]
    sizes = [len(FILES[name]) for name in names]
    assert all(size >= 256 * 1024 for size in sizes[:6]) and all(size < 256 * 1024 for size in sizes[6:])
    assert sizes[:6] == sorted(sizes[:6], reverse=True)  # largest first
    assert sorted(names) == sorted(FILES)


def _name(path: str) -> str:
    """The key in FILES of a snapshot path (which may carry the source's own directories)."""
    return next(name for name in FILES if path == name or path.endswith("/" + name))


@pytest.mark.parametrize("workers", [1, 3])
def test_round_trip_through_every_path(repo, snapshot, tmp_path: Path, workers: int) -> None:  # type: ignore[no-untyped-def]
    src, snap = snapshot
    result = restore_snapshot(repo, snap, tmp_path / "out", workers=workers)
    assert result.files == result.verified_files == len(FILES) and not result.failed
    assert tree_digest(tmp_path / "out") == tree_digest(src)


@pytest.mark.parametrize("workers", [1, 2])
def test_bytes_unlike_the_record_fail_and_are_named(repo, snapshot, tmp_path: Path, monkeypatch, workers: int) -> None:  # type: ignore[no-untyped-def]
    # Blobs authenticate but the file's whole differs from its record (a writer bug, or a
    # record that lies): the file is refused, never left under its name, the rest restored.
    _, snap = snapshot
    chunks = {
        entry["chunks"][-1]
        for entry in restoreplan.iter_entries(repo, snap)
        if entry["path"].endswith(("small/042.txt", "big/3.bin"))
    }

    class Flipping(restorefiles.BlobReader):
        def read(self, chunk_id: bytes):  # type: ignore[no-untyped-def]
            data = super().read(chunk_id)
            if chunk_id.hex() not in chunks:
                return data
            flipped = bytearray(data)
            flipped[len(flipped) // 2] ^= 0x01
            return flipped

    monkeypatch.setattr(restorefiles, "BlobReader", Flipping)
    # the forked writers read through BlobReader; an earlier test's leftover thread would
    # otherwise send this restore down the threaded path (backup.forked.can_fork)
    monkeypatch.setattr(restorefiles, "can_fork", lambda repo: True)
    with pytest.raises(VerificationFailed, match=r"^snapshot \w+: 2 entries not restored") as failed:
        restore_snapshot(repo, snap, tmp_path / "out", workers=workers)
    assert "small/042.txt" in str(failed.value) and "big/3.bin" in str(failed.value)
    restored = {str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert len(restored) == len(FILES) - 2
    assert not any(name.endswith(("small/042.txt", "big/3.bin")) or ".bcpctl-restore-" in name for name in restored)


def test_writers_claim_the_same_files_whether_the_tree_is_kept_or_read_again(repo, snapshot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # Up to KEPT_FILES the writers take the small files from the validating pass; beyond it
    # (memory stays bounded) each reads the tree again. Both must cut the same units.
    _, snap = snapshot

    def claimed(kept: int) -> list[str]:
        monkeypatch.setattr(restoreplan, "KEPT_FILES", kept)
        shape = restoreplan.validate_tree(repo, snap)
        assert (shape.small_files is None) == (kept == 0)
        return [entry["path"] for entry in restoreplan.claimed_files(repo, snap, Claims(), shape)]

    kept = claimed(1000)
    assert kept == claimed(0)
    assert sorted(map(_name, kept)) == sorted(FILES)


def test_a_batch_lookup_finds_every_copy_a_single_lookup_finds(repo, snapshot) -> None:  # type: ignore[no-untyped-def]
    # Writers look up a batch of blobs at once; condemned packs' copies must still come last,
    # and ids in no index (damage, a lying tree) must stay unknown so the file fails.
    _, snap = snapshot
    ids = [bytes.fromhex(c) for e in restoreplan.iter_entries(repo, snap) for c in e.get("chunks", ())]
    ids += [b"\x00" * 32, ids[0]]
    repo.cache.exclude_packs([next(iter(repo.cache.locations_of(ids[:1]).values()))[0].pack])
    batch = repo.cache.locations_of(ids)
    assert {chunk: repo.cache.locations(chunk) for chunk in ids if repo.cache.locations(chunk)} == batch
    assert b"\x00" * 32 not in batch
