"""Prune: two phases, grace measured by storage time, and a concurrent backup never loses a blob."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backup.check import check_repository
from backup.errors import RepositoryError
from backup.forget import forget_snapshots
from backup.prune import LEASE_KEY, prune, read_tombstones
from backup.restorer import restore_snapshot
from backup.retention import RetentionPolicy
from backup.run import BackupRequest, run_backup
from backup.snapref import find_snapshot
from backup.snapshot import list_snapshots
from backup.sources import parse_source
from tests.backup.conftest import make_tree, tree_digest


def backup(repo, src: Path):  # type: ignore[no-untyped-def]
    return run_backup(repo, BackupRequest(parse_source(f"path:{src}"), system="s1"))


def stored_bytes(repo_dir: Path) -> int:
    return sum(p.stat().st_size for p in repo_dir.rglob("*") if p.is_file())


def test_forget_then_prune_frees_space_in_two_phases(repo, repo_dir: Path, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"keep.txt": "always here"})
    for _day in range(3):
        (src / "daily.bin").write_bytes(os.urandom(2 * 1024 * 1024))
        backup(repo, src)
    size_before = stored_bytes(repo_dir)
    forget_snapshots(repo, RetentionPolicy(last=1), now=datetime.now(UTC))
    first = prune(repo, grace_seconds=3600)
    assert first.packs_marked >= 1 and first.packs_deleted == 0 and first.tombstones_pending == 1
    assert check_repository(repo, read_data=True).ok, "marked data must stay readable during the grace period"
    assert stored_bytes(repo_dir) >= size_before - 1024 * 1024
    second = prune(repo, grace_seconds=0)
    assert second.packs_deleted >= 1 and second.tombstones_pending == 0
    assert stored_bytes(repo_dir) < size_before - 3 * 1024 * 1024
    report = check_repository(repo, read_data=True)
    assert report.ok and report.unindexed_packs == 0
    restore_snapshot(repo, find_snapshot(repo, "latest"), tmp_path / "out")
    assert tree_digest(tmp_path / "out") == tree_digest(src)


def test_a_backup_that_started_before_the_mark_keeps_its_blobs(repo, tmp_path: Path, monkeypatch) -> None:
    src = make_tree(tmp_path / "src", {"shared.bin": os.urandom(3 * 1024 * 1024)})
    old = backup(repo, src)
    # The old snapshot is forgotten and its packs condemned while another backup is running...
    forget_snapshots(repo, RetentionPolicy(within_seconds=1), now=datetime(2100, 1, 1, tzinfo=UTC), allow_empty=True)
    assert list_snapshots(repo) == []
    assert prune(repo, grace_seconds=3600).packs_marked >= 1
    # ...one that read the (empty) list of condemned packs before the mark, and so deduplicates
    # against them and commits a snapshot that needs them.
    monkeypatch.setattr("backup.run.condemned_packs", lambda _repo: set())
    late = backup(repo, src)
    assert late.bytes_added < 1024 * 1024, "the late backup deduplicated against condemned packs"
    report = prune(repo, grace_seconds=0)
    assert report.packs_spared >= 1
    assert check_repository(repo, read_data=True).ok
    restore_snapshot(repo, find_snapshot(repo, late.snapshot_id), tmp_path / "out")
    assert (tmp_path / "out/shared.bin").read_bytes() == (src / "shared.bin").read_bytes()
    assert old.snapshot_id != late.snapshot_id


def test_a_new_backup_never_deduplicates_against_condemned_packs(repo, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"shared.bin": os.urandom(2 * 1024 * 1024)})
    backup(repo, src)
    forget_snapshots(repo, RetentionPolicy(within_seconds=1), now=datetime(2100, 1, 1, tzinfo=UTC), allow_empty=True)
    prune(repo, grace_seconds=3600)
    assert read_tombstones(repo)
    fresh = backup(repo, src)
    assert fresh.bytes_added > 2 * 1024 * 1024 - 1024, "data in condemned packs must be stored again"
    prune(repo, grace_seconds=0)
    assert check_repository(repo, read_data=True).ok


def test_partly_used_packs_are_repacked(repo, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {f"f{i}.bin": os.urandom(200_000) for i in range(30)})
    backup(repo, src)
    for i in range(25):
        (src / f"f{i}.bin").unlink()
    backup(repo, src)
    forget_snapshots(repo, RetentionPolicy(last=1), now=datetime.now(UTC))
    report = prune(repo, grace_seconds=0)
    assert report.packs_repacked >= 1 and report.packs_deleted >= 1
    assert check_repository(repo, read_data=True).ok
    restore_snapshot(repo, find_snapshot(repo, "latest"), tmp_path / "out")
    assert tree_digest(tmp_path / "out") == tree_digest(src)


def test_only_one_prune_at_a_time(repo) -> None:
    repo.backend.save_new(LEASE_KEY, b"{}")
    with pytest.raises(RepositoryError, match="prune lock"):
        prune(repo, grace_seconds=0)
    repo.backend.remove(LEASE_KEY)
    prune(repo, grace_seconds=0)


def test_prune_removes_a_killed_writers_old_temporary_and_keeps_a_held_one(repo, repo_dir: Path) -> None:
    from storage.local import LEFTOVER_AGE, LocalBackend

    old = datetime.now(UTC).timestamp() - 2 * LEFTOVER_AGE
    (repo_dir / "data" / "ab").mkdir(parents=True, exist_ok=True)
    dead = repo_dir / "data" / "ab" / f".{'ab' * 32}.tmp-1-1"  # its writer was killed: nobody holds it
    dead.write_bytes(b"half an object")
    held = repo_dir / "data" / "ab" / f".{'cd' * 32}.tmp-2-2"
    fd = LocalBackend._open_new(held)  # a save in progress holds its temporary's lock
    try:
        for path in (dead, held):
            os.utime(path, (old, old))
        assert prune(repo, grace_seconds=3600).leftovers_removed == 1
        assert not dead.exists() and held.exists()
    finally:
        os.close(fd)
