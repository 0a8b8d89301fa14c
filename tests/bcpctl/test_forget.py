"""`forget` through the real CLI: a typo never removes anything, the newest snapshot of a system
stays unless --allow-empty, and --dry-run lists exactly what a real run removes."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backup.forget import forget_snapshots
from backup.opening import init_repository, open_repository
from backup.retention import UNLIMITED, RetentionPolicy
from backup.run import BackupRequest, run_backup
from backup.sources import parse_source
from storage.local import LocalBackend
from tests.backup.conftest import FAST_KDF
from tests.conftest import PASSWORD, Cli


def _repo_with_snapshots(tmp_path: Path, name: str = "repo") -> Path:
    """Two systems, three snapshots of each."""
    repo = tmp_path / name
    init_repository(LocalBackend(repo, create=True), PASSWORD, kdf=FAST_KDF)
    src = tmp_path / f"src-{name}"
    src.mkdir()
    with open_repository(LocalBackend(repo), PASSWORD) as r:
        for i in range(3):
            (src / "f.txt").write_text(f"version {i}")
            for system in ("goka-juki", "naka-tax"):
                run_backup(r, BackupRequest(parse_source(f"path:{src}"), system=system))
    return repo


def _snapshot_files(repo: Path) -> list[str]:
    return sorted(p.name for p in (repo / "snapshots").iterdir())


@pytest.mark.parametrize(
    "args",
    [
        ["--keep-daily", "-5"],
        ["--keep-last", "-1"],
        ["--keep-last", "-0x1"],
        ["--keep-weekly", "1e3"],
        ["--keep-within", "-1d"],
        ["--keep-within", "0"],
        ["--keep-within", "99999999999999999999d"],
        ["--keep-last", "1", "--grace", "-1h"],
        ["--keep-last", "1", "--grace", "nan"],
    ],
)
def test_bad_retention_input_exits_2_and_removes_nothing(cli: Cli, tmp_path: Path, args: list[str]) -> None:
    repo = _repo_with_snapshots(tmp_path)
    before = _snapshot_files(repo)
    done = cli("forget", "--repo", str(repo), *args)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("bcpctl: error: ") and done.stderr.count("\n") == 1, done.stderr
    assert "internal error" not in done.stderr
    assert _snapshot_files(repo) == before


@pytest.mark.parametrize("value", ["-5", "1.5", "nan", "1" + "0" * 30])
def test_bad_prune_input_exits_2(cli: Cli, tmp_path: Path, value: str) -> None:
    repo = _repo_with_snapshots(tmp_path)
    done = cli("prune", "--repo", str(repo), "--max-unused", value)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr


def test_unlimited_keeps_all_and_the_newest_needs_allow_empty(cli: Cli, tmp_path: Path) -> None:
    repo = _repo_with_snapshots(tmp_path)
    before = _snapshot_files(repo)
    kept = cli("forget", "--repo", str(repo), "--keep-last", "unlimited", "--keep-daily", "0", "--json")
    assert kept.returncode == 0, kept.stderr
    assert json.loads(kept.stdout)["remove"] == [] and _snapshot_files(repo) == before

    # Every snapshot is older than one second (a lower bound a busy machine only widens): the
    # window holds none, the newest of each system stays.
    time.sleep(1.5)
    within = cli("forget", "--repo", str(repo), "--keep-within", "1s", "--json")
    assert within.returncode == 0, within.stderr
    result = json.loads(within.stdout)
    assert sorted(row["group"] for row in result["keep"]) == ["goka-juki", "naka-tax"]
    assert all(row["reasons"] == ["newest"] for row in result["keep"])
    assert len(_snapshot_files(repo)) == 2

    emptied = cli("forget", "--repo", str(repo), "--keep-within", "1s", "--allow-empty", "--json")
    assert emptied.returncode == 0, emptied.stderr
    assert _snapshot_files(repo) == []


@pytest.mark.parametrize(
    "policy",
    [
        RetentionPolicy(last=1),
        RetentionPolicy(last=2, daily=1),
        RetentionPolicy(within_seconds=1),
        RetentionPolicy(hourly=UNLIMITED),
    ],
)
def test_dry_run_decisions_are_what_a_real_run_does(tmp_path: Path, policy: RetentionPolicy) -> None:
    repo = _repo_with_snapshots(tmp_path)
    now = datetime.now(UTC)
    with open_repository(LocalBackend(repo), PASSWORD) as r:
        planned = forget_snapshots(r, policy, now=now, dry_run=True)
        assert _snapshot_files(repo) == sorted({d.id for d in planned}), "a dry run removes nothing"
        done = forget_snapshots(r, policy, now=now)
    assert [(d.id, d.keep, d.reasons) for d in planned] == [(d.id, d.keep, d.reasons) for d in done]
    assert _snapshot_files(repo) == sorted(d.id for d in done if d.keep)


def test_cli_dry_run_lists_what_the_real_run_removes(cli: Cli, tmp_path: Path) -> None:
    repo = _repo_with_snapshots(tmp_path)
    args = ["forget", "--repo", str(repo), "--keep-last", "1", "--keep-hourly", "1", "--json"]
    dry = json.loads(cli(*args, "--dry-run").stdout)
    assert len(_snapshot_files(repo)) == 6
    real = json.loads(cli(*args).stdout)
    assert dry["dry_run"] and not real["dry_run"]
    assert dry["keep"] == real["keep"] and dry["remove"] == real["remove"]
    assert _snapshot_files(repo) == sorted(row["id"] for row in real["keep"])


@pytest.mark.parametrize(
    "args", [["prune"], ["forget", "--keep-last", "1", "--prune"]], ids=["prune", "forget --prune"]
)
def test_no_grace_period_is_said_aloud_and_a_grace_period_is_silent(cli: Cli, tmp_path: Path, args: list[str]) -> None:
    """``--grace 0`` deletes what a backup running at this moment has written but not yet
    referenced: allowed (a repository nobody writes to), never silently."""
    repo = _repo_with_snapshots(tmp_path)
    bare = cli(*args, "--repo", str(repo), "--grace", "0", "--json")
    assert bare.returncode == 0, bare.stderr
    assert bare.stderr.startswith("bcpctl: warning: --grace 0") and bare.stderr.count("\n") == 1, bare.stderr
    assert any("--grace 0" in w for w in json.loads(bare.stdout)["warnings"])
    graced = cli(*args, "--repo", str(repo), "--json")
    assert graced.returncode == 0 and graced.stderr == "", graced.stderr


def test_forget_of_a_source_path_with_brackets_reports_it_as_written(cli: Cli, tmp_path: Path) -> None:
    """The group cell was drawn as rich markup: a path source '[/x]' made forget an internal
    error, exit 1, after the snapshots were forgotten."""
    repo = str(tmp_path / "repo")
    assert cli("repo", "init", "--repo", repo).returncode == 0
    data = tmp_path / "[" / "x]"
    data.mkdir(parents=True)
    (data / "f").write_text("x")
    for _ in range(2):
        assert cli("backup", "run", "--repo", repo, "--source", f"path:{data}").returncode == 0
    done = cli("forget", "--repo", repo, "--keep-last", "1", env={"COLUMNS": "300"})
    assert done.returncode == 0, done.stderr
    assert "[/x]" in done.stdout
