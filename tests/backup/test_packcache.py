"""Remote-style storage: a restore fetches each pack once and verifies it by name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backup.errors import VerificationFailed
from backup.opening import open_repository
from backup.restorer import restore_snapshot
from backup.run import BackupRequest, run_backup
from backup.snapref import find_snapshot
from backup.sources import parse_source
from storage.backend import Capabilities
from storage.local import LocalBackend
from tests.backup.conftest import make_tree, tree_digest
from tests.conftest import PASSWORD


class CountingRemote(LocalBackend):
    """A local directory that claims ranged reads are expensive, and counts pack reads."""

    loads: list[str]

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(cheap_ranges=False)

    def load(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        if key.startswith(("data/", "meta/")):
            self.loads.append(key)
        return super().load(key, offset, length)


def test_restore_fetches_each_pack_once(repo, repo_dir: Path, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {f"docs/{i:04d}.txt": os.urandom(3000) for i in range(400)})
    run_backup(repo, BackupRequest(parse_source(f"path:{src}"), system="s1"))
    remote = CountingRemote(repo_dir)
    remote.loads = []
    with open_repository(remote, PASSWORD) as remote_repo:
        restore_snapshot(remote_repo, find_snapshot(remote_repo, "latest"), tmp_path / "out")
    assert tree_digest(tmp_path / "out") == tree_digest(src)
    assert len(remote.loads) == len(set(remote.loads)) <= 4, remote.loads


def test_a_corrupted_remote_pack_is_refused(repo, repo_dir: Path, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"a.bin": os.urandom(100_000)})
    run_backup(repo, BackupRequest(parse_source(f"path:{src}"), system="s1"))
    pack = next((repo_dir / "data").rglob("*"))
    while pack.is_dir():
        pack = next(pack.iterdir())
    raw = bytearray(pack.read_bytes())
    raw[-100] ^= 1
    pack.write_bytes(bytes(raw))
    remote = CountingRemote(repo_dir)
    remote.loads = []
    with open_repository(remote, PASSWORD) as remote_repo:
        with pytest.raises(VerificationFailed, match=r"'a\.bin': .*does not match its name"):
            restore_snapshot(remote_repo, find_snapshot(remote_repo, "latest"), tmp_path / "out")
