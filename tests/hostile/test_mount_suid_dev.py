"""Hostile finding: ``bcpctl mount`` served a snapshot's setuid/setgid bits on files that all
belong to the user who mounted.

A user of a backed-up system makes a program of their own setuid (``chmod u+s`` on one's own
file needs no privilege). The operator mounts the snapshot as root on the backup host, where it
shows as a setuid-*root* program; libfuse's default ``nosuid`` stops it running so on the mount,
but the operator's ``cp -a`` (or rsync -a) of the file out of it makes a real setuid-root
program on the host. A browsing mount must never lend the snapshot's privileges to the host:
no setuid/setgid bit served, and ``nosuid,nodev`` asked for outright (a device node
``mknod c 1 1`` of a container would otherwise open the host's own memory).
"""

from __future__ import annotations

import os
import signal
import stat
from pathlib import Path

import pytest

from tests.backup.test_mount import _start, _wait_mounted
from tests.conftest import Cli


@pytest.fixture
def hostile_source(cli: Cli, tmp_path: Path) -> tuple[str, Path]:
    if not os.path.exists("/dev/fuse"):
        pytest.skip("no /dev/fuse on this machine")
    src = tmp_path / "src"
    src.mkdir()
    tool = src / "tool"
    tool.write_bytes(b"#!/bin/sh\nid -u\n")
    os.chmod(tool, 0o6755)  # setuid and setgid, as the file's owner may set them
    sticky = src / "shared"
    sticky.mkdir()
    os.chmod(sticky, 0o1777)
    try:
        os.mknod(src / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("mknod needs privileges this test does not have")
    url = str(tmp_path / "repo")
    assert cli("repo", "init", "--repo", url).returncode == 0
    done = cli("backup", "run", "--repo", url, "--source", f"path:{src}", "--system", "files")
    assert done.returncode == 0, done.stderr
    return url, src


def _options(mnt: Path) -> set[str]:
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if fields[1] == str(mnt):
            return set(fields[3].split(","))
    raise AssertionError(f"{mnt} is not in /proc/self/mounts")


def test_a_mounted_snapshot_lends_no_setuid_and_no_device(hostile_source: tuple[str, Path], tmp_path: Path) -> None:
    url, _src = hostile_source
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    proc = _start("latest", str(mnt), "--repo", url)
    try:
        _wait_mounted(proc, mnt)
        assert {"nosuid", "nodev", "ro"} <= _options(mnt)
        mode = os.stat(mnt / "tool").st_mode
        assert not mode & (stat.S_ISUID | stat.S_ISGID), oct(mode)
        assert mode & 0o755 == 0o555 & 0o755  # still readable and executable, never writable
        assert stat.S_ISCHR(os.lstat(mnt / "null").st_mode)  # shown as what it is
        with pytest.raises(PermissionError):
            os.open(mnt / "null", os.O_RDONLY)  # but never opened as the host's device
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    assert proc.returncode == 0
