"""Hostile finding (minor): hard links between FIFOs, device nodes or symlinks are restored as
separate entries, silently.

Issue 15's invariant: "the restored tree equals the source byte for byte (names, link targets,
modes, hard-link structure)". ``PathArchiver._first_link`` records ``hardlink`` entries only for
regular files, so ``ln fifo fifo2`` (or ``ln -P`` of a symlink) backs up two independent
entries and restore makes two inodes, with no warning saying the structure was not kept.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import Cli


def test_hard_linked_fifos_and_symlinks_keep_their_structure_or_are_named(cli: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    os.mkfifo(src / "fifo")
    os.link(src / "fifo", src / "fifo2")
    os.symlink("target", src / "link")
    os.link(src / "link", src / "link2", follow_symlinks=False)
    repo = str(tmp_path / "repo")
    assert cli("repo", "init", "--repo", repo).returncode == 0
    assert cli("backup", "run", "--repo", repo, "--source", f"path:{src}").returncode == 0
    out = tmp_path / "out"
    done = cli("restore", "latest", "--repo", repo, "--target", str(out))
    assert done.returncode == 0, done.stderr
    for a, b in (("fifo", "fifo2"), ("link", "link2")):
        same = os.lstat(out / a).st_ino == os.lstat(out / b).st_ino
        assert same or "warning" in done.stderr, f"{a} and {b} were one inode; restored as two, silently"
