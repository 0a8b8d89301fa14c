"""A backup restored by root of a user namespace where only root is mapped: every ``fchown`` to
another id fails (EINVAL), the way an unprivileged container or NFS root squash loses owners."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Cli


def restore_without_owners(cli: Cli, src: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """Back ``src`` up into a new repository beside it, then restore it into ``out`` from the namespace."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.fail("needs root and unshare(1) to make chown fail the way a user-namespaced container does")
    repo = str(src.parent / "repo")
    assert cli("repo", "init", "--repo", repo).returncode == 0
    assert cli("backup", "run", "--repo", repo, "--source", f"path:{src}").returncode == 0
    return subprocess.run(
        ["unshare", "--user", "--map-root-user", sys.executable, "-m", "bcpctl.cli",
         "restore", "latest", "--repo", repo, "--target", str(out), "--json"],
        env=cli.env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
