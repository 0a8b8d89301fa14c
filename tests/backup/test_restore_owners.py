"""Setuid/setgid bits come back only with their owner (the class of hostile finding 1).

Whatever the entry type (file, hard-linked file, directory, FIFO) and however the owner is
lost (root in a user namespace that maps no other id, a restore not run as root), no restored
entry keeps S_ISUID without its recorded uid or S_ISGID without its recorded gid, and each
such entry is named as a warning — the restore itself goes on.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from backup.restoremeta import apply_metadata, link_metadata
from tests.backup.userns import restore_without_owners
from tests.conftest import Cli

SET_ID = stat.S_ISUID | stat.S_ISGID


def _tree(src: Path) -> dict[str, int]:
    """Entries of every type with set-id bits, owned by 1000:1000; their recorded modes."""
    src.mkdir()
    (src / "tool").write_bytes(b"#!/bin/sh\necho tool\n")
    os.link(src / "tool", src / "tool-again")
    (src / "shared").mkdir()
    (src / "shared" / "inside").write_text("x\n")
    os.mkfifo(src / "pipe")
    modes = {"tool": 0o6755, "shared": 0o2775, "pipe": 0o2660}
    for name, mode in modes.items():
        os.chown(src / name, 1000, 1000)
        os.chmod(src / name, mode)
    return modes


def test_root_in_a_user_namespace_restores_no_set_id_bit_without_its_owner(cli: Cli, tmp_path: Path) -> None:
    modes = _tree(tmp_path / "src")
    out = tmp_path / "out"
    done = restore_without_owners(cli, tmp_path / "src", out)
    assert done.returncode == 0, done.stderr
    for name in [*modes, "tool-again"]:
        st = (out / name).lstat()
        assert st.st_uid != 1000 and not st.st_mode & SET_ID, f"{name}: {stat.filemode(st.st_mode)}"
        assert stat.S_IMODE(st.st_mode) == modes.get(name, 0o6755) & ~SET_ID, "the other bits are kept"
    named = json.loads(done.stdout)["owners_not_kept"]
    assert {"'tool'", "'shared'", "'pipe'"} <= {line.split(":")[0] for line in named}
    assert "bcpctl: warning:" in done.stderr and "setuid/setgid" in done.stderr


@pytest.mark.parametrize("mode", [0o4755, 0o2755, 0o6755, 0o0755])
@pytest.mark.parametrize("owner", ["recorded", "someone else"])
def test_a_set_id_bit_is_kept_exactly_when_its_owner_is(tmp_path: Path, mode: int, owner: str) -> None:
    """Not running as root (``as_root=False``: no chown), the owner is kept only if it already is the recorded one."""
    path = tmp_path / "f"
    path.write_text("x")
    uid, gid = (os.getuid(), os.getgid()) if owner == "recorded" else (os.getuid() + 4242, os.getgid() + 4242)
    entry = {"mode": mode, "uid": uid, "gid": gid, "mtime": 0}
    fd = os.open(path, os.O_RDONLY)
    try:
        note = apply_metadata(fd, entry, as_root=False)
    finally:
        os.close(fd)
    got = stat.S_IMODE(path.stat().st_mode)
    if owner == "recorded":
        assert got == mode and note is None
    else:
        assert got == mode & ~SET_ID
        assert (note is not None) == bool(mode & SET_ID)
    os.mkfifo(tmp_path / "p")
    dir_fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        link_metadata(dir_fd, "p", entry, as_root=False, chmod=True)
    finally:
        os.close(dir_fd)
    assert stat.S_IMODE((tmp_path / "p").stat().st_mode) == (mode if owner == "recorded" else mode & ~SET_ID)
