"""The concurrent count behind the backup's totals and ETA."""

from __future__ import annotations

import os
import time
from pathlib import Path

from backup.prescan import Prescan, count_tree
from backup.run import BackupRequest, run_backup
from backup.sources import parse_source
from tests.backup.conftest import make_tree


def test_count_matches_what_the_backup_reads(repo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = make_tree(
        tmp_path / "src",
        {"a": b"x" * 1000, "d/b": b"y" * 2000, "d/skip.tmp": b"z" * 4000, "link": "->a", "e/c": b"w" * 10},
    )
    os.link(src / "a", src / "e/hard")  # a second name: read once
    os.mkfifo(src / "fifo")
    totals = count_tree(str(src), ("*.tmp",))
    assert (totals.files, totals.bytes) == (3, 3010)
    seen: list[int] = []
    result = run_backup(repo, BackupRequest(parse_source(f"path:{src}"), exclude=("*.tmp",)), progress=seen.append)
    assert sum(seen) == totals.bytes == result.bytes_total


def test_prescan_reports_from_a_child_and_never_blocks(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {f"f{i}": b"." * i for i in range(50)})
    with Prescan(str(src)) as scan:
        deadline = time.monotonic() + 30
        while (totals := scan.poll()) is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    assert (totals.files, totals.bytes) == (50, sum(range(50)))
    stopped = Prescan(str(src))
    stopped.close()  # killed and reaped before it reported
    assert stopped.poll() is None


def test_a_terminal_sees_the_totals_of_a_path_backup(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import pty
    import subprocess
    import sys

    src = make_tree(tmp_path / "src", {f"d{i}/f{j}": os.urandom(64 * 1024) for i in range(20) for j in range(20)})
    url = str(tmp_path / "repo")
    assert cli("repo", "init", "--repo", url).returncode == 0
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bcpctl.cli", "backup", "run", "--repo", url, "--source", f"path:{src}"],
        stdout=subprocess.DEVNULL,
        stderr=slave,
        env={**os.environ, "COLUMNS": "200"},
    )
    os.close(slave)
    shown = b""
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        shown += data
    assert proc.wait(120) == 0
    os.close(master)
    assert b"backing up 400 files" in shown
