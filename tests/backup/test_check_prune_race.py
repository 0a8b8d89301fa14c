"""check beside forget and prune, with the race forced rather than hoped for.

A prune that deleted index files rebuilds the shared index cache: it empties it, then loads
every index file again. A check judging snapshots in that window finds their blobs "in no
index", though the snapshots still exist and their data is stored. Here prune stops exactly
there (its storage holds its first index read after a deletion) while check judges, on every
run of check the repository offers, so the outcome does not depend on the scheduler.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backup.check import check_repository
from backup.forget import forget_snapshots
from backup.index import INDEX_PREFIX, IndexFile, encode_index
from backup.locks import LOCKS_PREFIX
from backup.manifest import MANIFEST_KEY
from backup.opening import open_repository
from backup.pack import pack_key
from backup.prune import prune
from backup.repository import SNAPSHOT_PREFIX
from backup.retention import RetentionPolicy
from backup.run import BackupRequest, run_backup
from backup.snapshot import list_snapshots
from backup.sources import parse_source
from storage.backend import ObjectInfo
from storage.local import LocalBackend
from tests.conftest import PASSWORD, Cli


class _PruneStorage(LocalBackend):
    """Prune's storage: after an index file is removed, the next index read waits for ``resume``.

    That read is the cache rebuild of prune's final sync, so prune stops with the cache empty."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.stopped = threading.Event()
        self.resume = threading.Event()
        #: prune stopped with the cache emptied (not merely ended)
        self.held = False
        self._removed_index = False

    def remove(self, key: str) -> None:
        super().remove(key)
        self._removed_index = self._removed_index or key.startswith(INDEX_PREFIX)

    def load(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        if self._removed_index and key.startswith(INDEX_PREFIX) and not self.stopped.is_set():
            self.held = True
            self.stopped.set()
            self.resume.wait(timeout=60)
        return super().load(key, offset, length)


class _CheckStorage(LocalBackend):
    """Check's storage: the first snapshot each run of check loads starts a retention cycle.

    The cycle forgets the oldest snapshot and prunes without grace, and check goes on only once
    that prune stopped mid-rebuild. Any look at the prune lease or the manifest lets prune finish
    (so a check that waits for the lease sees it go)."""

    def __init__(self, root: Path, cycles: int, after_last: Callable[[Path], str] | None = None) -> None:
        super().__init__(root)
        self.root = root
        self.cycles = cycles
        self.after_last = after_last
        #: what ``after_last`` returned
        self.lost: list[str] = []
        self._armed = True
        self._prune: tuple[threading.Thread, _PruneStorage] | None = None
        self.errors: list[str] = []
        #: prunes that stopped mid-rebuild while check went on
        self.held = 0

    def load(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        if key.startswith(SNAPSHOT_PREFIX) and self._armed and self.cycles and self._prune is None:
            self._armed = False
            self.cycles -= 1
            self._start_cycle()
        elif key.startswith(LOCKS_PREFIX) or key == MANIFEST_KEY:
            self.finish()
        return super().load(key, offset, length)

    def stat(self, key: str) -> ObjectInfo:
        if key.startswith(LOCKS_PREFIX) or key == MANIFEST_KEY:
            self.finish()
            self._armed = True  # the next run of check (it starts by reading the manifest)
        return super().stat(key)

    def _start_cycle(self) -> None:
        storage = _PruneStorage(self.root)

        def cycle() -> None:
            try:
                with open_repository(storage, PASSWORD) as repo:
                    keep = len(list_snapshots(repo)) - 1
                    forget_snapshots(repo, RetentionPolicy(last=keep), now=datetime.now(UTC))
                    prune(repo, grace_seconds=0, max_unused=0.0)
                if self.after_last is not None and self.cycles == 0:
                    self.lost.append(self.after_last(self.root))
            except Exception as exc:
                self.errors.append(repr(exc))
            finally:
                storage.stopped.set()

        thread = threading.Thread(target=cycle)
        thread.start()
        self._prune = thread, storage
        storage.stopped.wait(timeout=60)
        self.held += storage.held

    def finish(self) -> None:
        if self._prune is not None:
            thread, storage = self._prune
            self._prune = None
            storage.resume.set()
            thread.join()


@pytest.fixture
def five_snapshots(repo_dir: Path, tmp_path: Path) -> Path:
    """Five snapshots of one growing directory: each adds its own blobs, so forgetting the oldest
    leaves packs prune can drop or must repack."""
    src = tmp_path / "src"
    src.mkdir()
    for number in range(5):
        (src / f"f{number}").write_bytes(os.urandom(20_000))
        with open_repository(LocalBackend(repo_dir), PASSWORD) as repo:
            run_backup(repo, BackupRequest(parse_source(f"path:{src}"), system="goka-juki"))
    return repo_dir


@pytest.fixture
def racing(five_snapshots: Path) -> Iterator[_CheckStorage]:
    storage = _CheckStorage(five_snapshots, cycles=2)
    yield storage
    storage.finish()


@pytest.mark.parametrize("read_data", [False, True])
def test_check_meets_prune_mid_rebuild_in_every_run(racing: _CheckStorage, read_data: bool) -> None:
    """Every run of check meets a prune that emptied the shared cache and has not refilled it:
    the snapshots check judges still exist and their data is stored, so there is nothing to report."""
    with open_repository(racing, PASSWORD) as repo:
        report = check_repository(repo, read_data=read_data)
    assert racing.held >= 1 and not racing.errors, "the race did not run as forced"
    assert report.ok, [f"{p.object}: {p.message}" for p in report.problems]
    assert report.snapshots >= 3


def test_tree_blob_gone_from_every_index_is_reported_beside_prune(cli: Cli, five_snapshots: Path) -> None:
    """Real damage stays damage when prune races: once the prune check met mid-rebuild is done,
    the newest snapshot (which still exists) loses its tree blob from every index and from
    storage. Judged again, it is named (exit 1 on the command line)."""
    storage = _CheckStorage(five_snapshots, cycles=1, after_last=_lose_newest_tree)
    try:
        with open_repository(storage, PASSWORD) as repo:
            report = check_repository(repo)
    finally:
        storage.finish()
    assert storage.held == 1 and not storage.errors, "the race did not run as forced"
    newest = storage.lost[0]
    found = [f"{p.object}: {p.message}" for p in report.problems]
    assert not report.ok
    assert f"snapshot {newest[:8]} tree blob" in "\n".join(found) and "is not in any index" in "\n".join(found), found
    assert newest in report.affected_snapshots
    run = cli("check", "--repo", str(five_snapshots), "--json")
    assert run.returncode == 1 and "internal error" not in run.stderr
    objects = [p["object"] for p in json.loads(run.stdout)["problems"]]
    assert any(o.startswith(f"snapshot {newest[:8]} tree blob") for o in objects), objects


def _lose_newest_tree(root: Path) -> str:
    """Drop the pack holding the newest snapshot's tree from every index file and from storage."""
    with open_repository(LocalBackend(root), PASSWORD) as repo:
        newest = list_snapshots(repo)[-1]
        (where,) = repo.cache.locations(bytes.fromhex(newest.tree[0]))
        for name in sorted(repo.index_names()):
            index = repo.load_index(name)
            if any(p.name == where.pack for p in index.packs):
                kept = tuple(p for p in index.packs if p.name != where.pack)
                repo.save_sealed(INDEX_PREFIX, "index", encode_index(IndexFile(kept)))
                repo.backend.remove(INDEX_PREFIX + name)
        repo.backend.remove(pack_key(where.pack, where.blob_type))
    return newest.id
