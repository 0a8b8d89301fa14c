"""Hostile finding: ``--overwrite always`` (or ``if-changed``) deletes the contents of a file
system mounted inside the target, where the snapshot has a link or a file.

On the backed-up host ``/srv/data`` was a symlink to the data disk; on the host restored onto,
``/srv/data`` is where that disk is mounted. Restoring the snapshot into ``/srv`` with
``--overwrite always`` replaces "a directory where a link goes": ``shutil.rmtree`` walks into
the mount and deletes every file of the other file system, then fails with EBUSY on the mount
point itself — the restore exits 1, but the data on the mounted disk is gone. Replacing must
stay on the target's file system: a directory that is (or holds) a mount point is reported,
never emptied.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Cli


@pytest.mark.parametrize("overwrite", ["always", "if-changed"])
def test_overwrite_never_deletes_files_of_a_file_system_mounted_in_the_target(
    cli: Cli, tmp_path: Path, overwrite: str
) -> None:
    if os.geteuid() != 0:
        pytest.fail("needs root to mount a tmpfs")
    src = tmp_path / "src"
    src.mkdir()
    (src / "data").symlink_to("/mnt/data-disk")
    (src / "readme").write_text("hi\n")
    repo = str(tmp_path / "repo")
    assert cli("repo", "init", "--repo", repo).returncode == 0
    assert cli("backup", "run", "--repo", repo, "--source", f"path:{src}").returncode == 0
    target = tmp_path / "srv"
    mount = target / "data"
    mount.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    try:
        (mount / "db.file").write_text("precious\n")
        done = cli("restore", "latest", "--repo", repo, "--target", str(target), "--overwrite", overwrite)
        assert "internal error" not in done.stderr, done.stderr
        assert (mount / "db.file").exists(), f"the mounted file system was emptied: {done.stderr}"
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
