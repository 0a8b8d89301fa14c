"""Forked readers and restorers: used from a single-threaded process, never beside other threads.

A fork copies every lock in whatever state other threads left it; ``bcpctl serve`` runs
backups on a thread pool, and a forked reader there once hung on a lock it inherited held.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from backup.forked import Claims, can_fork
from backup.restorer import restore_snapshot
from backup.run import BackupRequest, run_backup
from backup.snapref import find_snapshot
from backup.sources import parse_source
from tests.backup.conftest import make_tree, tree_digest

FILES = {f"d{i % 7}/f{i}.bin": bytes([i % 251]) * (50_000 + i * 977) for i in range(60)}


def test_a_process_with_other_threads_reads_and_restores_with_threads(repo, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", FILES)
    stop = threading.Event()
    bystander = threading.Thread(target=stop.wait, daemon=True)
    bystander.start()
    try:
        assert not can_fork(repo)
        result = run_backup(repo, BackupRequest(parse_source(f"path:{src}"), system="s1", tenant="goka", workers=3))
        restore_snapshot(repo, find_snapshot(repo, result.snapshot_id), tmp_path / "out", workers=3)
    finally:
        stop.set()
        bystander.join()
    assert tree_digest(tmp_path / "out") == tree_digest(src)


def test_a_single_threaded_process_forks_its_readers_and_restorers(repo_dir: Path, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", FILES)
    script = textwrap.dedent(
        f"""
        import json
        from pathlib import Path
        import backup.forked as forked
        from storage.local import LocalBackend
        from backup.opening import open_repository
        from backup.restorer import restore_snapshot
        from backup.run import BackupRequest, run_backup
        from backup.snapref import find_snapshot
        from backup.sources import parse_source
        from tests.conftest import PASSWORD

        started = []
        real_init = forked.Worker.__init__
        def counting_init(self, *args, **kwargs):
            started.append(1)
            real_init(self, *args, **kwargs)
        forked.Worker.__init__ = counting_init
        with open_repository(LocalBackend({str(repo_dir)!r}), PASSWORD) as repo:
            request = BackupRequest(parse_source("path:{src}"), system="s1", tenant="goka", workers=3)
            result = run_backup(repo, request)
            after_backup = len(started)
            restore_snapshot(repo, find_snapshot(repo, result.snapshot_id), Path({str(tmp_path / "out")!r}), workers=3)
        print(json.dumps([after_backup, len(started) - after_backup]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[2]
    )
    assert done.returncode == 0, done.stderr
    backup_workers, restore_workers = (int(n) for n in done.stdout.strip().strip("[]").split(","))
    # two writers beside the leader, each verifying what it writes
    assert (backup_workers, restore_workers) == (2, 2)
    assert tree_digest(tmp_path / "out") == tree_digest(src)


def test_forked_processes_claim_every_unit_exactly_once() -> None:
    claims = Claims()
    read_end, write_end = os.pipe()
    children = []
    for _ in range(3):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            os.close(read_end)
            taken = []
            while (n := claims.take()) < 3000:
                taken.append(n)
                claims.add_done(1)
            os.write(write_end, (" ".join(map(str, taken)) + "\n").encode())
            os._exit(0)
        children.append(pid)
    os.close(write_end)
    with os.fdopen(read_end) as reader:
        lines = reader.read().splitlines()
    for pid in children:
        assert os.waitpid(pid, 0)[1] == 0
    shares = [[int(n) for n in line.split()] for line in lines]
    assert len(shares) == 3
    assert sorted(n for share in shares for n in share) == list(range(3000))
    assert all(share == sorted(share) for share in shares)  # a process's claims only move forward
    assert claims.add_done(0) == 3000
