"""``--overwrite`` never empties another file system mounted inside the target (class of hostile finding 7).

Whatever the snapshot holds at a path where the target has a directory (a file, a link, a FIFO,
a hard link) and wherever a mount sits in that directory (it is the mount point, a tmpfs is
mounted deeper inside, a directory of the same file system is bind-mounted inside — same
device number), the directory is left as it is, the path is named (exit 1), and every file of
the mounted file system survives; the rest of the snapshot is restored. Real mounts: needs root.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from backup.repository import Repository
from backup.restorer import RestoreIncomplete, restore_snapshot
from backup.run import BackupRequest, run_backup
from backup.snapref import find_snapshot
from backup.sources import parse_source


def _file(path: Path) -> None:
    path.write_text("from the snapshot\n")


def _hardlink(path: Path) -> None:
    """``data`` as the later name (the first name in tree order carries the content)."""
    (path.parent / "a-original").write_text("linked\n")
    os.link(path.parent / "a-original", path)


#: what the snapshot holds at ``data``
ENTRIES: dict[str, Callable[[Path], None]] = {
    "file": _file,
    "symlink": lambda p: p.symlink_to("/mnt/data-disk"),
    "fifo": lambda p: os.mkfifo(p),
    "hardlink": _hardlink,
}


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


@pytest.fixture
def mounts() -> Iterator[list[Path]]:
    if os.geteuid() != 0:
        pytest.fail("needs root to mount a tmpfs")
    made: list[Path] = []
    yield made
    for point in reversed(made):
        subprocess.run(["umount", "-l", str(point)], check=False)


def _plant(target: Path, outside: Path, where: str, made: list[Path]) -> Path:
    """The target's ``data`` directory with a mount as ``where`` says; returns the precious file."""
    data = target / "data"
    data.mkdir(parents=True)
    (data / "plain").write_text("a file of the target's own file system\n")
    if where == "data is the mount point":
        point = data
        _mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(point))
    elif where == "a tmpfs deeper inside":
        point = data / "deep" / "er"
        point.mkdir(parents=True)
        _mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(point))
    else:  # a bind mount keeps the device number: only the mount table tells
        source = outside / "bound"
        source.mkdir()
        point = data / "bound"
        point.mkdir()
        _mount("--bind", str(source), str(point))
    made.append(point)
    (point / "db.file").write_text("precious\n")
    return point / "db.file"


@pytest.mark.parametrize("overwrite", ["always", "if-changed"])
@pytest.mark.parametrize("where", ["data is the mount point", "a tmpfs deeper inside", "a bind mount inside"])
@pytest.mark.parametrize("kind", sorted(ENTRIES))
def test_a_directory_holding_a_mount_is_never_emptied(  # type: ignore[no-untyped-def]
    repo: Repository, tmp_path: Path, mounts, kind: str, where: str, overwrite: str
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "readme").write_text("restored as usual\n")
    ENTRIES[kind](src / "data")
    run_backup(repo, BackupRequest(parse_source(f"path:{src}"), system="m"))
    target, outside = tmp_path / "srv", tmp_path / "outside"
    outside.mkdir()
    precious = _plant(target, outside, where, mounts)
    with pytest.raises(RestoreIncomplete) as caught:
        restore_snapshot(repo, find_snapshot(repo, "latest:m"), target, overwrite=overwrite)  # type: ignore[arg-type]
    assert precious.read_text() == "precious\n", "the mounted file system was emptied"
    assert (target / "data" / "plain").exists() or where == "data is the mount point"
    assert [line.split(":")[0] for line in caught.value.result.failed] == ["'data'"]
    assert "mount point" in caught.value.result.failed[0]
    assert (target / "readme").read_text() == "restored as usual\n"


def test_a_replaced_directory_is_removed_without_following_its_links(repo: Repository, tmp_path: Path) -> None:
    """No mount: the directory goes, and what its links point at stays."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "data").write_text("the file the snapshot holds\n")
    run_backup(repo, BackupRequest(parse_source(f"path:{src}"), system="m"))
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "dir" / "keep").write_text("outside\n")
    (outside / "file").write_text("outside\n")
    data = tmp_path / "target" / "data"
    (data / "sub").mkdir(parents=True)
    (data / "sub" / "to-dir").symlink_to(outside / "dir")
    (data / "to-file").symlink_to(outside / "file")
    os.link(outside / "file", data / "sub" / "hard")
    restore_snapshot(repo, find_snapshot(repo, "latest:m"), tmp_path / "target", overwrite="always")
    assert data.read_text() == "the file the snapshot holds\n"
    assert (outside / "dir" / "keep").read_text() == "outside\n" and (outside / "file").read_text() == "outside\n"
