"""Restore never writes outside its target, whatever the target already holds.

Traps planted in the target — a hard link to a file outside, a FIFO, a symlink or a
directory where a file goes — are replaced (under ``--overwrite``), never written through,
never opened, never a hang or an internal error. Without ``--overwrite`` a non-empty target
is refused before anything is written.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from backup.errors import TargetNotEmpty
from backup.restorer import restore_snapshot
from backup.restoretarget import TEMP_PREFIX
from backup.run import BackupRequest, run_backup
from backup.snapref import find_snapshot
from backup.snapshot import Snapshot
from backup.sources import parse_source
from dc.errors import UsageError
from tests.backup.conftest import make_tree, tree_state
from tests.conftest import Cli

FILES: dict[str, bytes | str] = {
    "a.txt": b"restored a\n",
    "d/b.txt": b"restored b\n",
    "d/e/c.bin": os.urandom(300_000),
    "link": "->a.txt",
}


@pytest.fixture
def snapshot(repo, tmp_path: Path) -> tuple[Path, Snapshot]:  # type: ignore[no-untyped-def]
    src = make_tree(tmp_path / "src", FILES)
    assert run_backup(repo, BackupRequest(parse_source(f"path:{src}"), system="s1")).errors == []
    return src, find_snapshot(repo, "latest:s1")


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A tree beside the target that nothing may change."""
    root = tmp_path / "outside"
    (root / "dir").mkdir(parents=True)
    (root / "dir/inner.txt").write_bytes(b"inner")
    for name in ("outside.txt", "same.txt"):
        (root / name).write_bytes(b"outside\n")
    (root / "same.txt").write_bytes(FILES["a.txt"])  # type: ignore[arg-type]
    for path in root.rglob("*"):
        os.chmod(path, 0o640 if path.is_file() else 0o750)
        os.utime(path, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    return root


def _plant(target: Path, outside: Path) -> None:
    (target / "d").mkdir(parents=True)
    os.link(outside / "outside.txt", target / "a.txt")  # `ln outside.txt target/a.txt`
    os.mkfifo(target / "d/b.txt")  # a FIFO at a file's path: opening it would block forever
    os.symlink(outside / "dir", target / "d/e")  # a symlink where a directory goes
    (target / "link").mkdir()  # a directory (with contents) where a symlink goes
    os.symlink(outside / "outside.txt", target / "link/into-outside")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("policy", ["if-changed", "always"])
def test_planted_traps_are_replaced_never_written_through(
    repo, snapshot, outside: Path, tmp_path: Path, policy: str
) -> None:  # type: ignore[no-untyped-def]
    src, snap = snapshot
    target = tmp_path / "target"
    _plant(target, outside)
    before = tree_state(outside)
    restored = restore_snapshot(repo, snap, target, overwrite=policy)  # type: ignore[arg-type]
    assert restored.files == 3 and not restored.failed
    assert tree_state(outside) == before  # bytes, mode and mtime of everything outside
    assert tree_state(target) == tree_state(src)
    assert os.stat(outside / "outside.txt").st_nlink == 1


@pytest.mark.timeout(60)
def test_a_hard_link_to_an_outside_file_with_the_same_bytes_is_still_replaced(
    repo, snapshot, outside: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    # if-changed keeps what already matches, but setting a kept file's mode and times would
    # reach the outside name too: a file with other names is never kept
    src, snap = snapshot
    target = tmp_path / "target"
    target.mkdir()
    os.link(outside / "same.txt", target / "a.txt")
    before = tree_state(outside)
    restore_snapshot(repo, snap, target, overwrite="if-changed")
    assert tree_state(outside) == before
    assert tree_state(target) == tree_state(src)


def test_a_non_empty_target_is_refused_before_anything_is_written(
    repo, snapshot, outside: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    _, snap = snapshot
    target = tmp_path / "target"
    _plant(target, outside)
    before, outside_before = tree_state(target), tree_state(outside)
    with pytest.raises(TargetNotEmpty, match="--overwrite") as refused:
        restore_snapshot(repo, snap, target)
    assert refused.value.exit_code == 2
    assert tree_state(target) == before and tree_state(outside) == outside_before


def test_cli_refuses_a_non_empty_target_and_replaces_traps_when_told(cli: Cli, outside: Path, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", FILES)
    repo = str(tmp_path / "repo")
    assert cli("repo", "init", "--repo", repo).returncode == 0
    assert cli("backup", "run", "--repo", repo, "--source", f"path:{src}").returncode == 0
    target = tmp_path / "target"
    _plant(target, outside)
    before = tree_state(outside)
    refused = cli("restore", "latest", "--repo", repo, "--target", str(target), timeout=60)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert refused.stderr.startswith("bcpctl: error: ") and "--overwrite" in refused.stderr
    done = cli("restore", "latest", "--repo", repo, "--target", str(target), "--overwrite", "always", timeout=60)
    assert done.returncode == 0, done.stderr
    assert "internal error" not in done.stderr
    assert tree_state(outside) == before and tree_state(target) == tree_state(src)


def test_if_changed_keeps_what_matches_and_replaces_the_rest(repo, snapshot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src, snap = snapshot
    target = tmp_path / "target"
    restore_snapshot(repo, snap, target)
    kept = os.stat(target / "d/e/c.bin").st_ino
    (target / "a.txt").write_bytes(b"edited since\n")
    os.chmod(target / "d/b.txt", 0o600)  # same bytes, other mode: kept, its mode set again
    os.unlink(target / "link")
    os.symlink("elsewhere", target / "link")
    again = restore_snapshot(repo, snap, target, overwrite="if-changed")
    assert again.unchanged == 2 and again.files == 3
    assert os.stat(target / "d/e/c.bin").st_ino == kept
    assert tree_state(target) == tree_state(src)
    replaced = restore_snapshot(repo, snap, target, overwrite="always")
    assert replaced.unchanged == 0 and os.stat(target / "d/e/c.bin").st_ino != kept
    assert tree_state(target) == tree_state(src)


def test_a_file_where_a_directory_goes_is_replaced_only_when_allowed(repo, snapshot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src, snap = snapshot
    target = tmp_path / "target"
    target.mkdir()
    (target / "d").write_bytes(b"a file where a directory goes")
    restore_snapshot(repo, snap, target, overwrite="always")
    assert stat.S_ISDIR(os.lstat(target / "d").st_mode)
    assert tree_state(target) == tree_state(src)


def test_the_target_itself_must_be_a_directory_and_the_policy_known(repo, snapshot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, snap = snapshot
    (tmp_path / "plain").write_bytes(b"x")
    with pytest.raises(UsageError, match="not a directory"):
        restore_snapshot(repo, snap, tmp_path / "plain", overwrite="always")
    with pytest.raises(UsageError, match="overwrite policy"):
        restore_snapshot(repo, snap, tmp_path / "new", overwrite="sometimes")  # type: ignore[arg-type]
    assert not (tmp_path / "new").exists()


def test_no_temporary_name_is_left_behind(repo, snapshot, outside: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, snap = snapshot
    target = tmp_path / "target"
    _plant(target, outside)
    restore_snapshot(repo, snap, target, overwrite="always")
    assert not [p for p in target.rglob("*") if p.name.startswith(TEMP_PREFIX)]
