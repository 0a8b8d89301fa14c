"""Hostile finding: ``replicate`` (and ``replicate --follow``) with the target the source itself
— the same directory, spelt ``repo/../repo`` or through a symlink, a mistyped offsite — ran
"successfully" for ever: nothing to copy, every system's offsite recovery-point lag recorded
as 0 s, the dashboard and alerts green while no copy exists anywhere else. Refused (exit 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dc.errors import UsageError
from dc.state import open_state
from replication.ledger import Ledger
from replication.sync import replicate
from storage.local import LocalBackend
from tests.replication import primary


@pytest.fixture
def source(tmp_path: Path) -> LocalBackend:
    backend = LocalBackend(tmp_path / "primary", create=True)
    primary.init(backend)
    primary.backup(backend, primary.write_tree(tmp_path / "data", files=2), system="goka-juki")
    return backend


def _spellings(source: LocalBackend, tmp_path: Path) -> list[Path]:
    link = tmp_path / "offsite-link"
    link.symlink_to(source.root)
    return [source.root, source.root / ".." / source.root.name, link]


def test_a_repository_is_never_replicated_onto_itself(source: LocalBackend, tmp_path: Path) -> None:
    ledger = Ledger(open_state())
    for target in _spellings(source, tmp_path):
        with pytest.raises(UsageError, match="same repository"):
            replicate(source, LocalBackend(target), ledger)
    assert ledger.lag() == []  # no recovery point recorded for a copy that does not exist


def test_follow_onto_itself_stops_at_once_with_one_line(source: LocalBackend, tmp_path: Path) -> None:
    link = tmp_path / "offsite-link"
    link.symlink_to(source.root)
    args = ["replicate", "--from", str(source.root), "--to", str(link), "--follow", "--interval", "0.2"]
    done = subprocess.run([sys.executable, "-m", "bcpctl.cli", *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2, done
    assert len(done.stderr.strip().splitlines()) == 1 and "same repository" in done.stderr
