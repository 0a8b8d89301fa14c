"""Whatever is renamed inside the target during a restore, no file is reported restored unless it is there.

The class of hostile finding 5. A racing process renames a directory (or its parent) out of the
target, puts a link to an outside directory in its place, or swaps two directories of the
target, at the moment the first progress report arrives. Descriptors cached before that keep
writing into the moved directory — openat2 would be needed to stop it — but the invariant holds
for every move, with one writer or several: every file the restore does not name as failed is
in the target, at its path, with its recorded bytes; nothing is written through the link; and
a restore that lost files says so (exit 1).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from backup import restorefiles
from backup.repository import Repository
from backup.restorer import RestoreIncomplete, restore_snapshot
from backup.run import BackupRequest, run_backup
from backup.snapref import find_snapshot
from backup.sources import parse_source


def _swap(a: Path, b: Path) -> None:
    os.rename(a, a.with_name("swap"))
    os.rename(b, a)
    os.rename(a.with_name("swap"), b)


def _replace_with_link(moved: Path, outside: Path) -> None:
    os.rename(moved, outside / "moved")
    (outside / "victim").mkdir()
    moved.symlink_to(outside / "victim")


#: what the racing process does, given the target and a directory outside it
MOVES: dict[str, Callable[[Path, Path], None]] = {
    "directory renamed out": lambda t, o: os.rename(t / "p" / "d", o / "moved"),
    "parent renamed out": lambda t, o: os.rename(t / "p", o / "moved"),
    "link to outside put in its place": lambda t, o: _replace_with_link(t / "p" / "d", o),
    "two directories swapped": lambda t, o: _swap(t / "p" / "d", t / "p" / "e"),
}


def _ancestors(rel: str) -> set[str]:
    parts = rel.split("/")
    return {"/".join(parts[:depth]) for depth in range(1, len(parts))}


def _source(root: Path) -> dict[str, bytes]:
    files = {"p/d/a-first": os.urandom(9 * 1024 * 1024)}  # progress is reported after 8 MiB
    files |= {f"p/d/f{i:02d}": f"d {i}\n".encode() for i in range(15)}
    files |= {f"p/e/g{i:02d}": f"e {i}\n".encode() for i in range(15)}
    files |= {f"top{i}": f"top {i}\n".encode() for i in range(3)}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("move", sorted(MOVES))
def test_every_file_reported_restored_is_in_the_target(
    repo: Repository, tmp_path: Path, move: str, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # progress after every blob, not every 8 MiB: the race is run from the progress callback,
    # and these files are far smaller than one tally step
    monkeypatch.setattr(restorefiles, "_TALLY_BYTES", 1)
    files = _source(tmp_path / "src")
    run_backup(repo, BackupRequest(parse_source(f"path:{tmp_path / 'src'}"), system="race"))
    target, outside = tmp_path / "target", tmp_path / "outside"
    outside.mkdir()
    moved = False

    def race(_amount: int) -> None:
        nonlocal moved
        if not moved:
            MOVES[move](target, outside)
            moved = True

    snapshot = find_snapshot(repo, "latest:race")
    try:
        result = restore_snapshot(repo, snapshot, target, workers=workers, progress=race)
        failed: set[str] = set()
    except RestoreIncomplete as exc:
        result = exc.result
        assert result.failed_count == len(result.failed), "every failure named"
        failed = {line.split("': ", 1)[0].strip("'") for line in result.failed}
    assert moved
    # a failed directory is named for what it holds (it may have moved after its files were placed)
    reported = {rel for rel in files if not ({rel} | _ancestors(rel)) & failed}
    assert reported != set(files), "the race went unreported"
    for rel in sorted(reported):
        path = target / rel
        assert os.path.realpath(path) == str(path), f"{rel} reported restored, but reached through a link"
        assert path.read_bytes() == files[rel], f"{rel} reported restored, but not in the target"
    if (outside / "victim").exists():
        assert not any((outside / "victim").iterdir()), "written through the planted link"
