"""Hostile finding 1: one oversized object under ``snapshots/`` or ``index/`` makes every listing,
restore, forget, prune and check an "internal error: MemoryError" (or, without a memory limit, a
host-wide out-of-memory).

Anyone who can write the repository directory (or a careless copy of a disk image into it)
plants a large file — a sparse one costs no disk — named like an object. ``LocalBackend.load``
reads a whole object into memory before anything checks it, so ``bcpctl snapshots`` (and
``restore latest``, ``forget``, ``prune``, ``check``) asks for gigabytes. FIFOs and devices
planted the same way are already reported as stray objects and skipped; an object far larger
than a snapshot or index can be must be too: one bad object never locks out the rest.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Cli

LIMIT = 1536 * 1024 * 1024


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))


@pytest.mark.parametrize(
    ("where", "command"),
    [
        *[("snapshots", c) for c in (("snapshots",), ("forget", "--keep-last", "1", "--dry-run"))],
        *[(w, ("check",)) for w in ("snapshots", "index")],
        *[(w, ("restore", "latest", "--target")) for w in ("snapshots", "index")],
    ],
)
def test_an_oversized_object_is_skipped_not_read_whole(
    cli: Cli, tmp_path: Path, where: str, command: tuple[str, ...]
) -> None:
    repo, src = tmp_path / "repo", tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a\n")
    assert cli("repo", "init", "--repo", str(repo)).returncode == 0
    assert cli("backup", "run", "--repo", str(repo), "--source", f"path:{src}").returncode == 0
    planted = repo / where / ("00" * 32)
    with planted.open("wb") as out:
        out.truncate(8 * 1024 * 1024 * 1024)  # sparse: costs no disk
    args = [*command, str(tmp_path / "out")] if command[-1] == "--target" else list(command)
    done = subprocess.run(
        [sys.executable, "-m", "bcpctl.cli", *args, "--repo", str(repo)],
        env=cli.env, capture_output=True, text=True, timeout=120, preexec_fn=_limited,
    )  # fmt: skip
    assert "internal error" not in done.stderr, done.stderr
    if command[0] == "check":
        assert done.returncode == 1 and where in done.stderr, done.stderr  # named as a bad object
    else:
        assert done.returncode == 0, done.stderr  # the genuine snapshot still lists, restores, is kept
    os.remove(planted)
