"""Hostile finding: a restore as root that cannot give a file its recorded owner keeps the
file's setuid/setgid bits anyway, on a file now owned by root.

Where ``chown`` fails (an unprivileged container's user namespace with unmapped ids, NFS with
root squash, a file system without owners), the restored file stays root's. Setting the
recorded mode afterwards turns an ordinary user's setuid-to-themselves program into a
setuid-root one — GNU tar clears S_ISUID/S_ISGID exactly when it cannot restore the owner.
Nothing is reported either: the ownership is silently lost.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tests.backup.userns import restore_without_owners
from tests.conftest import Cli


def test_a_file_whose_owner_cannot_be_restored_loses_its_setuid_bits(cli: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    tool = src / "tool"
    tool.write_bytes(b"#!/bin/sh\necho user tool\n")
    os.chown(tool, 1000, 1000)
    os.chmod(tool, 0o6755)  # setuid and setgid to uid/gid 1000: harmless for 1000's own program
    out = tmp_path / "out"
    done = restore_without_owners(cli, src, out)
    assert done.returncode in (0, 1), done.stderr
    st = (out / "tool").lstat()
    if st.st_uid != 1000:
        assert not st.st_mode & (stat.S_ISUID | stat.S_ISGID), (
            f"restored tool is owned by uid {st.st_uid} with mode {stat.filemode(st.st_mode)}: "
            "a setuid program of uid 1000 became one of root"
        )
