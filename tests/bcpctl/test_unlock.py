"""A killed prune never blocks the next one; `bcpctl unlock` removes stale locks and refuses live ones."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from backup.locks import Machine
from backup.opening import init_repository
from storage.local import LocalBackend
from tests.backup.conftest import FAST_KDF
from tests.backup.test_locks import lock_body
from tests.conftest import PASSWORD, Cli


def _repo_with_garbage(cli: Cli, tmp_path: Path) -> Path:
    """A repository where prune has something to mark: a forgotten snapshot's packs."""
    repo = tmp_path / "repo"
    init_repository(LocalBackend(repo, create=True), PASSWORD, kdf=FAST_KDF)
    src = tmp_path / "src"
    src.mkdir()
    for content in (b"first" * 50_000, b"second" * 50_000):
        (src / "f.bin").write_bytes(content)
        done = cli("backup", "run", "--repo", str(repo), "--source", f"path:{src}", "--system", "s1")
        assert done.returncode == 0, done.stderr
    assert cli("forget", "--repo", str(repo), "--keep-last", "1").returncode == 0
    return repo


def test_a_killed_prune_does_not_block_the_next_one(cli: Cli, tmp_path: Path) -> None:
    repo = _repo_with_garbage(cli, tmp_path)
    killed = cli("prune", "--repo", str(repo), "--grace", "0", env={"BCPCTL_FAILPOINTS": "prune.before-tombstone"})
    assert killed.returncode == -9
    holder = json.loads((repo / "locks" / "prune").read_bytes())
    assert holder["host"] and holder["pid"] and holder["ttl"] and holder["pid_start"]

    again = cli("prune", "--repo", str(repo), "--grace", "0", "--json")
    assert again.returncode == 0, again.stderr
    (note,) = json.loads(again.stdout)["notes"]
    assert "released a stale prune lock" in note and str(holder["pid"]) in note
    assert not (repo / "locks" / "prune").exists()
    assert cli("check", "--repo", str(repo), "--read-data").returncode == 0


def _plant(repo: Path, pid: int, machine: Machine | None = None) -> None:
    (repo / "locks").mkdir(exist_ok=True)
    (repo / "locks" / "prune").write_bytes(lock_body(pid, machine=machine, token="planted"))


def test_unlock_refuses_a_live_lock_and_removes_it_once_its_holder_is_gone(cli: Cli, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    init_repository(LocalBackend(repo, create=True), PASSWORD, kdf=FAST_KDF)
    assert json.loads(cli("unlock", "--repo", str(repo), "--json").stdout) == {"locks": [], "probes_removed": 0}

    holder = subprocess.Popen(["sleep", "60"])
    try:
        _plant(repo, holder.pid)
        live = cli("unlock", "--repo", str(repo), "--json", "--force")
        assert live.returncode == 1, live.stderr
        assert live.stderr.startswith("bcpctl: error: lock prune stays: held by") and str(holder.pid) in live.stderr
        assert json.loads(live.stdout)["locks"][0]["state"] == "live"
        blocked = cli("prune", "--repo", str(repo))
        assert blocked.returncode == 1 and str(holder.pid) in blocked.stderr
    finally:
        holder.kill()
        holder.wait()
    gone = cli("unlock", "--repo", str(repo))
    assert gone.returncode == 0, gone.stderr
    assert "removed lock prune (stale)" in gone.stdout and not (repo / "locks" / "prune").exists()


def test_unlock_needs_force_for_another_machines_lock(cli: Cli, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    init_repository(LocalBackend(repo, create=True), PASSWORD, kdf=FAST_KDF)
    _plant(repo, 1, Machine("ctl-offsite", "other-machine", "other-boot"))
    refused = cli("unlock", "--repo", str(repo))
    assert refused.returncode == 1 and "--force" in refused.stderr and "ctl-offsite" in refused.stderr
    assert (repo / "locks" / "prune").exists()
    forced = cli("unlock", "--repo", str(repo), "--force", "--json")
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["locks"][0]["removed"] is True
    assert not (repo / "locks" / "prune").exists()


def test_unlock_of_a_missing_repository_exits_2(cli: Cli, tmp_path: Path) -> None:
    done = cli("unlock", "--repo", str(tmp_path))
    assert done.returncode == 2 and done.stderr.count("\n") == 1
