"""check while backups, forget and prune run: what is only in flight is never a problem.

Backups never lock (DESIGN), so a check can meet a repository mid-backup: packs without
their index, an index file without its snapshot, a snapshot the manifest does not sign yet,
and a manifest re-signed while check reads. ``bcpctl serve`` runs exactly that every few
seconds against one repository. Every check here must be ok; real damage is the business of
the damage matrix (``test_damage_matrix.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from backup.check import check_repository
from backup.checkreport import CheckReport
from backup.forget import forget_snapshots
from backup.opening import open_repository
from backup.prune import prune
from backup.retention import RetentionPolicy
from backup.run import BackupRequest, run_backup
from backup.sources import parse_source
from storage.local import LocalBackend
from tests.conftest import PASSWORD

#: how long each race runs: long enough for dozens of commits on a loaded two-core machine
RACE_SECONDS = 4.0


def _backup_loop(repo_dir: Path, src: Path, system: str, until: float, done: list[str], errors: list[str]) -> None:
    number = 0
    while time.monotonic() < until:
        (src / f"f{number}").write_bytes(os.urandom(2000) + system.encode() * 500)
        try:
            with open_repository(LocalBackend(repo_dir), PASSWORD) as repo:
                done.append(run_backup(repo, BackupRequest(parse_source(f"path:{src}"), system=system)).snapshot_id)
        except Exception as exc:
            errors.append(f"backup of {system}: {exc!r}")
            return
        number += 1


def _race(
    repo_dir: Path,
    tmp_path: Path,
    check: Callable[[], list[str]],
    extra: Callable[[float, list[str]], None] | None,
    systems: tuple[str, ...] = ("goka-juki", "naka-juki"),
) -> tuple[int, list[str], list[str]]:
    """``systems`` backing up in a loop (and ``extra``) while ``check`` runs over and over.

    Return how many checks ran, what the backups committed, and every false problem met."""
    until = time.monotonic() + RACE_SECONDS
    done: list[str] = []
    errors: list[str] = []
    workers = []
    for system in systems:
        src = tmp_path / f"src-{system}"
        src.mkdir(parents=True)
        workers.append(threading.Thread(target=_backup_loop, args=(repo_dir, src, system, until, done, errors)))
    if extra is not None:
        workers.append(threading.Thread(target=extra, args=(until, errors)))
    for worker in workers:
        worker.start()
    checks = 0
    false_problems: list[str] = []
    try:
        while time.monotonic() < until or checks == 0:
            false_problems += check()
            checks += 1
    finally:
        for worker in workers:
            worker.join()
    return checks, done, false_problems + errors


def _problems(report: CheckReport) -> list[str]:
    return [f"{p.object}: {p.message}" for p in report.problems]


def _core_check(repo_dir: Path, *, read_data: bool) -> Callable[[], list[str]]:
    def check() -> list[str]:
        with open_repository(LocalBackend(repo_dir), PASSWORD) as repo:
            return _problems(check_repository(repo, read_data=read_data))

    return check


def test_check_during_backups_reports_nothing_in_flight(repo_dir: Path, tmp_path: Path) -> None:
    """The core check, with and without --read-data, as the scheduler runs it beside backups."""
    for read_data in (False, True):
        checks, done, problems = _race(
            repo_dir, tmp_path / f"read-data-{read_data}", _core_check(repo_dir, read_data=read_data), None
        )
        assert not problems, f"{len(problems)} false problem(s) in {checks} checks: {problems[:5]}"
        assert checks >= 3 and len(done) >= 4, "the race never ran"
    with open_repository(LocalBackend(repo_dir), PASSWORD) as repo:
        report = check_repository(repo, read_data=True)
    assert report.ok and report.snapshots >= 8 and report.unindexed_packs == 0


def test_cli_check_during_backup_processes(repo_dir: Path, tmp_path: Path) -> None:
    """Real processes on both sides: ``bcpctl backup run`` in a loop, ``bcpctl check --json`` beside it."""
    until = time.monotonic() + RACE_SECONDS
    src = tmp_path / "src"
    src.mkdir()
    command = [sys.executable, "-m", "bcpctl.cli"]

    def backups(_until: float, errors: list[str]) -> None:
        number = 0
        while time.monotonic() < until:
            (src / f"f{number}").write_bytes(os.urandom(3000))
            run = subprocess.run(
                [*command, "backup", "run", "--repo", str(repo_dir), "--source", f"path:{src}", "--system", "cli"],
                capture_output=True,
                text=True,
                timeout=120,
            )
            if run.returncode != 0:
                errors.append(f"backup: {run.stderr.strip()}")
                return
            number += 1

    def check() -> list[str]:
        run = subprocess.run(
            [*command, "check", "--repo", str(repo_dir), "--read-data", "--json"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        report = json.loads(run.stdout)
        found = [f"{p['object']}: {p['message']}" for p in report["problems"]]
        return found if found or run.returncode == 0 else [f"exit {run.returncode}: {run.stderr.strip()}"]

    checks, _done, problems = _race(repo_dir, tmp_path, check, backups)
    assert not problems, f"{len(problems)} false problem(s) in {checks} checks: {problems[:5]}"


def test_check_during_forget_and_prune_reports_nothing_retention_removed(repo_dir: Path, tmp_path: Path) -> None:
    """One writer backs up, forgets and prunes with no grace (deleting at once) in turn; checks run beside it.

    Prune without grace must not run beside backups (it deletes their packs before they are
    indexed: real damage), so here backups and retention take turns and only check races them.
    """
    src = tmp_path / "src"
    src.mkdir()
    pruned: list[int] = []

    def writer(until: float, errors: list[str]) -> None:
        number = 0
        while time.monotonic() < until:
            (src / f"f{number}").write_bytes(os.urandom(2000))
            try:
                with open_repository(LocalBackend(repo_dir), PASSWORD) as repo:
                    run_backup(repo, BackupRequest(parse_source(f"path:{src}"), system="goka-juki"))
                if number % 2:
                    with open_repository(LocalBackend(repo_dir), PASSWORD) as repo:
                        forget_snapshots(repo, RetentionPolicy(last=2), now=datetime.now(UTC))
                    with open_repository(LocalBackend(repo_dir), PASSWORD) as repo:
                        pruned.append(prune(repo, grace_seconds=0, max_unused=0.0).packs_deleted)
            except Exception as exc:
                errors.append(f"writer: {exc!r}")
                return
            number += 1

    checks, _done, problems = _race(repo_dir, tmp_path, _core_check(repo_dir, read_data=True), writer, systems=())
    assert not problems, f"{len(problems)} false problem(s) in {checks} checks: {problems[:5]}"
    assert checks >= 3 and sum(pruned) >= 2, "the race never ran"
    with open_repository(LocalBackend(repo_dir), PASSWORD) as repo:
        report = check_repository(repo, read_data=True)
    assert report.ok and report.unindexed_packs == 0, _problems(report)
