"""Crash and corruption: SIGKILL at exact points, flipped bits, truncations — through the real CLI.

After a crash, ``check`` passes and every earlier snapshot restores byte-identical. After
corruption, ``check --read-data`` exits 1 naming the object and the affected snapshots, and
changes nothing in the repository.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
from pathlib import Path

import pytest

from tests.backup.conftest import make_tree, tree_digest
from tests.conftest import Cli, isolated_vars


def repo_state(repo: Path) -> dict[str, str]:
    return {
        str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(repo.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def seeded_once(tmp_path_factory: pytest.TempPathFactory, control_db_template: Path) -> tuple[Path, list[str]]:
    """A repository with two committed snapshots of a changing tree, made once per module (an
    init and two backups of 10 MiB through the CLI), with pristine copies of it, its source
    and the home (control database, cache) the commands left, for :func:`seeded`."""
    root = tmp_path_factory.mktemp("seeded")
    cli = Cli(isolated_vars(root / "home", control_db_template))
    repo = root / "repo"
    src = make_tree(
        root / "src",
        {
            "dump.sql": os.urandom(6 * 1024 * 1024),
            **{f"forms/{i:03d}.txt": f"申請書 {i}\n" * 50 for i in range(40)},
        },
    )
    assert cli("repo", "init", "--repo", str(repo)).returncode == 0
    ids = []
    for day in range(2):
        (src / f"day{day}.log").write_bytes(os.urandom(2 * 1024 * 1024))
        run = cli("backup", "run", "--repo", str(repo), "--source", f"path:{src}", "--system", "s1", "--json")
        assert run.returncode == 0, run.stderr
        ids.append(json.loads(run.stdout)["backups"][0]["result"]["snapshot_id"])
    for name in ("repo", "src", "home"):
        shutil.copytree(root / name, root / "pristine" / name, symlinks=True)
    return root, ids


@pytest.fixture
def seeded(seeded_once: tuple[Path, list[str]], isolated_env: Path) -> tuple[Path, Path, list[str]]:
    """The module's repository and source, and this test's home, exactly as the two backups
    left them, at their own paths (snapshots name the source; the cache is keyed by the
    repository's), whatever an earlier test crashed or damaged."""
    root, ids = seeded_once
    for name in ("repo", "src"):
        shutil.rmtree(root / name, ignore_errors=True)
        shutil.copytree(root / "pristine" / name, root / name, symlinks=True)
    shutil.copytree(root / "pristine" / "home", isolated_env, dirs_exist_ok=True)
    return root / "repo", root / "src", ids


@pytest.mark.slow
@pytest.mark.parametrize("point", ["storage.save.mid-object", "backup.after-packs", "backup.after-index"])
def test_sigkill_during_backup_loses_nothing(cli: Cli, seeded, tmp_path: Path, point: str) -> None:
    repo, src, ids = seeded
    expected = {sid: None for sid in ids}
    for sid in ids:  # what each committed snapshot restores to before the crash
        out = tmp_path / f"before-{sid[:8]}"
        assert cli("restore", sid, "--repo", str(repo), "--target", str(out)).returncode == 0
        expected[sid] = tree_digest(out)
    (src / "day2.log").write_bytes(os.urandom(20 * 1024 * 1024))
    crashed = cli(
        "backup",
        "run",
        "--repo",
        str(repo),
        "--source",
        f"path:{src}",
        "--system",
        "s1",
        env={"BCPCTL_FAILPOINTS": point},
    )
    assert crashed.returncode == -signal.SIGKILL
    listed = json.loads(cli("snapshots", "--repo", str(repo), "--json").stdout)
    assert sorted(s["id"] for s in listed) == sorted(ids), "a killed backup must not leave a snapshot"
    check = cli("check", "--repo", str(repo), "--read-data", "--json")
    assert check.returncode == 0, check.stdout + check.stderr
    for sid in ids:
        out = tmp_path / f"after-{sid[:8]}"
        assert cli("restore", sid, "--repo", str(repo), "--target", str(out)).returncode == 0
        assert tree_digest(out) == expected[sid]
    # The next backup completes, and prune clears the debris.
    assert cli("backup", "run", "--repo", str(repo), "--source", f"path:{src}", "--system", "s1").returncode == 0
    assert cli("prune", "--repo", str(repo), "--grace", "0s").returncode == 0
    assert cli("check", "--repo", str(repo), "--read-data").returncode == 0


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _largest(repo: Path, prefix: str) -> Path:
    return max((p for p in (repo / prefix).rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


@pytest.mark.parametrize("damage", [_flip, _truncate], ids=["flipped-bit", "truncated"])
@pytest.mark.parametrize("target", ["data", "index", "snapshots"])
def test_corruption_is_named_and_nothing_is_modified(cli: Cli, seeded, damage, target: str) -> None:
    repo, _src, ids = seeded
    victim = _largest(repo, target)
    damage(victim)
    before = repo_state(repo)
    result = cli("check", "--repo", str(repo), "--read-data", "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    named = " ".join(p["object"] for p in report["problems"])
    assert victim.name in named, f"{victim.name} not named in {named}"
    assert report["affected_snapshots"], "damage must be traced to the snapshots it breaks"
    assert set(report["affected_snapshots"]) <= set(ids)
    if target == "snapshots":
        assert report["affected_snapshots"] == [victim.name]
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("bcpctl: error: check found")
    assert repo_state(repo) == before, "check must not modify the repository"
