"""Hostile tests reuse the backup tests' real local repositories, and one finished demo."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.backup.conftest import open_repo, repo, repo_dir
from tests.conftest import Cli, isolated_vars

__all__ = ["demo_after_failover", "finished_demo", "open_repo", "repo", "repo_dir"]


@pytest.fixture(scope="session")
def finished_demo(tmp_path_factory: pytest.TempPathFactory, control_db_template: Path) -> tuple[Path, Path]:
    """``bcpctl demo`` run once per worker: its workdir and a pristine copy of it.

    The demo takes half a minute and its consortium lives entirely in its workdir (per-site
    control databases, caches, repositories), so tests that each need the consortium after
    its failover share one run and each get an exact copy (:func:`demo_after_failover`).
    """
    root = tmp_path_factory.mktemp("demo-once")
    env = isolated_vars(root / "home", control_db_template)
    work = root / "demo"
    done = Cli(env)("demo", "--workdir", str(work), "--scale", "0.001", timeout=600)
    assert done.returncode == 0, done.stderr
    pristine = root / "pristine"
    shutil.copytree(work, pristine, symlinks=True)
    return work, pristine


@pytest.fixture
def demo_after_failover(finished_demo: tuple[Path, Path]) -> Path:
    """The finished demo's workdir, byte for byte as the demo left it, whatever an earlier test
    did to it. Restored at the demo's own path: its configuration and control databases name
    absolute paths inside it."""
    work, pristine = finished_demo
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(pristine, work, symlinks=True)
    return work
