"""Hostile findings: an object of the wrong file type inside a local repository.

"Nothing bcpctl holds can be destroyed by one bad object" and "no operation hangs": a FIFO
planted under ``keys/``, ``snapshots/``, ``index/``, ``data/`` or ``locks/`` (anyone who can
write the repository directory, or a careless ``cp -a`` of a tree holding one) must be reported
as a damaged or stray object and skipped — not opened blocking, which hangs the command for
ever. ``LocalBackend.load`` opens objects with a plain ``O_RDONLY``; ``list`` reports FIFOs
as objects. A ``config`` that is a directory is an internal error for every command.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Cli


@pytest.fixture
def local_repo(cli: Cli, tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a\n")
    assert cli("repo", "init", "--repo", str(repo)).returncode == 0
    done = cli("backup", "run", "--repo", str(repo), "--source", f"path:{src}", "--system", "s1")
    assert done.returncode == 0, done.stderr
    return repo


@pytest.mark.parametrize(
    ("where", "command"),
    [
        ("keys", ("snapshots",)),
        ("snapshots", ("snapshots",)),
        ("index", ("check",)),
        ("data/00", ("check", "--read-data")),
        ("locks", ("unlock",)),
    ],
)
def test_a_fifo_in_the_repository_never_hangs_a_command(
    cli: Cli, local_repo: Path, tmp_path: Path, where: str, command: tuple[str, ...]
) -> None:
    folder = local_repo / where
    folder.mkdir(parents=True, exist_ok=True)
    os.mkfifo(folder / ("00" * 8 if where == "keys" else "00" * 32 if where != "locks" else "prune"))
    try:
        done = cli(*command, "--repo", str(local_repo), timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"bcpctl {' '.join(command)} hung on a FIFO under {where}/")
    assert "internal error" not in done.stderr, done.stderr


def test_a_config_that_is_a_directory_is_a_clear_error(cli: Cli, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "config").mkdir(parents=True)
    for command in (("snapshots",), ("check",), ("key", "list"), ("unlock",)):
        done = cli(*command, "--repo", str(repo))
        assert "internal error" not in done.stderr, done.stderr
        assert done.returncode == 2, done.stderr


def test_a_malformed_s3_endpoint_is_a_usage_error(cli: Cli) -> None:
    done = cli(
        "snapshots",
        "--repo",
        "s3://bucket/p?endpoint=http://[::1",
        env={"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"},
    )
    assert "internal error" not in done.stderr, done.stderr
    assert done.returncode == 2, done.stderr
