"""bcpctl mount: snapshots as a read-only FUSE file system (real FUSE where this machine has it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backup.mount import check_fuse
from dc.errors import UsageError
from tests.backup.conftest import make_tree, tree_state
from tests.conftest import Cli

FILES: dict[str, bytes | str] = {
    "docs/a.txt": "alpha\n",
    "docs/sub/b.sql": "select 1;\n",
    "big.bin": os.urandom(3 * 1024 * 1024 + 11),
    os.fsdecode(b"bad\xffname"): "not UTF-8\n",
    "we\nird": "newline\n",
    "link": "->docs/a.txt",
}


def test_a_machine_without_dev_fuse_gets_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist") as refused:
        check_fuse(str(tmp_path / "fuse"))
    assert refused.value.exit_code == 2


def _start(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bcpctl.cli", "mount", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def _wait_mounted(proc: subprocess.Popen[bytes], mnt: Path) -> None:
    deadline = time.monotonic() + 60
    while not os.path.ismount(mnt):
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            if "fuse" in err.lower() and ("permission" in err.lower() or "not permitted" in err.lower()):
                pytest.skip(f"FUSE mounts are not allowed here: {err.strip()}")
            pytest.fail(f"mount exited {proc.returncode}: {err}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("mount did not appear within 60 s")
        time.sleep(0.1)


@pytest.fixture
def repo_url(cli: Cli, tmp_path: Path) -> tuple[str, Path]:
    if not os.path.exists("/dev/fuse"):
        pytest.skip("no /dev/fuse on this machine")
    src = make_tree(tmp_path / "src", FILES)
    url = str(tmp_path / "repo")
    assert cli("repo", "init", "--repo", url).returncode == 0
    assert cli("backup", "run", "--repo", url, "--source", f"path:{src}", "--system", "files").returncode == 0
    return url, src


def test_mounted_snapshot_reads_back_byte_identical_and_refuses_writes(
    repo_url: tuple[str, Path], tmp_path: Path
) -> None:
    url, src = repo_url
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    proc = _start("latest", str(mnt), "--repo", url)
    try:
        _wait_mounted(proc, mnt)
        mounted, original = tree_state(mnt), tree_state(src)
        assert set(mounted) == set(original)
        for path, (kind, _mode, payload, mtime) in original.items():
            assert mounted[path][0] == kind and mounted[path][2] == payload, path
            assert mounted[path][3] == mtime, path
        with pytest.raises(OSError) as refused:
            (mnt / "new").write_text("x")
        assert refused.value.errno in (30, 13)  # EROFS (or EACCES: no write bit)
        with pytest.raises(OSError):
            (mnt / "docs/a.txt").unlink()
        with open(mnt / "big.bin", "rb") as f:  # a read across blob boundaries
            f.seek(1024 * 1024 - 3)
            assert f.read(10) == FILES["big.bin"][1024 * 1024 - 3 : 1024 * 1024 + 7]  # type: ignore[index]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    assert not os.path.ismount(mnt) and proc.returncode == 0
    assert tree_state(src) == tree_state(src)


def test_mount_all_lays_out_system_and_snapshot_directories(
    cli: Cli, repo_url: tuple[str, Path], tmp_path: Path
) -> None:
    url, src = repo_url
    (src / "docs/a.txt").write_text("second day\n")
    assert cli("backup", "run", "--repo", url, "--source", f"path:{src}", "--system", "files").returncode == 0
    mnt = tmp_path / "all"
    mnt.mkdir()
    proc = _start("--all", str(mnt), "--repo", url)
    try:
        _wait_mounted(proc, mnt)
        assert os.listdir(mnt) == ["files"]
        days = sorted(os.listdir(mnt / "files"))
        assert len(days) == 2 and all("_" in d for d in days)
        # two backups within one second sort by id, not time: compare the pair, not the order
        assert {(mnt / "files" / day / "docs/a.txt").read_text() for day in days} == {"alpha\n", "second day\n"}
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
        proc.wait(60)
    assert proc.returncode == 0


def test_mount_refuses_a_non_empty_mountpoint_and_bad_arguments(
    cli: Cli, repo_url: tuple[str, Path], tmp_path: Path
) -> None:
    url, _ = repo_url
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    for args in (("latest", str(busy)), ("latest",), ("--all",), ("latest", str(tmp_path / "missing"))):
        result = cli("mount", *args, "--repo", url, timeout=60)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
