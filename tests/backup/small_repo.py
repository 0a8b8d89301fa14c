"""A tiny repository whose objects have known roles, for damage tests.

One blob per pack (``pack_size=1``), one index file per backup (one reader, fewer packs than a
writer puts in an index file) and files smaller than the chunker's minimum (one blob each): so
"the pack holding file X", "the meta pack of snapshot Y" and "the index file of backup Z" are
well defined whatever the random keys, and so is which snapshots and files each object breaks.

Two systems, three snapshots: s1 twice (a file changed, one added), s2 once; ``shared.bin`` has
the same bytes in every snapshot, so its one blob is shared by all three.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from pathlib import Path

from backup.keys import config_digest, wrap
from backup.opening import init_repository, open_repository
from backup.pack import pack_key
from backup.repository import ChunkerParams, Repository
from backup.run import BackupRequest, run_backup
from backup.slotformat import KEYS_PREFIX
from backup.snapshot import list_snapshots
from backup.sources import SourceSpec
from backup.tree import iter_tree
from storage.local import LocalBackend
from tests.backup.conftest import FAST_KDF, make_tree, tree_digest
from tests.conftest import PASSWORD

OTHER_PASSWORD = "another operator's passphrase"
SMALL_CHUNKER = ChunkerParams(avg=4096, min=1024, max=16384)


@dataclass
class SmallSnapshot:
    label: str
    id: str
    system: str
    time: str
    #: what restore must reproduce (tests.backup.conftest.tree_digest of the source)
    expected: dict[str, tuple[str, bytes | str]]
    #: file path -> pack keys its blobs are in
    file_packs: dict[str, set[str]] = field(default_factory=dict)
    #: pack keys of the snapshot's tree blobs
    tree_packs: set[str] = field(default_factory=set)

    def packs(self) -> set[str]:
        return self.tree_packs.union(*self.file_packs.values())


@dataclass
class SmallRepo:
    path: Path
    snapshots: list[SmallSnapshot]
    #: pack key -> the index file (key) naming it
    index_of: dict[str, str]
    #: the key slot of the other operator (sorts before the one the tests unlock with)
    other_slot: str
    own_slot: str

    def by_label(self, label: str) -> SmallSnapshot:
        return next(s for s in self.snapshots if s.label == label)


def build_small_repo(root: Path) -> SmallRepo:
    path = root / "repo"
    backend = LocalBackend(path, create=True)
    init_repository(backend, PASSWORD, kdf=FAST_KDF, chunker=SMALL_CHUNKER, pack_size=1)
    rng = random.Random(15)
    shared = rng.randbytes(900)
    sources: list[tuple[str, dict[str, bytes | str]]] = [
        ("s1", {"shared.bin": shared, "a.txt": "alpha\n", "sub/b.txt": "bravo\n", "link": "->sub/b.txt"}),
        # d.txt's pack is mostly its blob, so damage in the middle of the pack hits the data
        ("s1", {"a.txt": "alpha, second day\n", "d.txt": rng.randbytes(700)}),
        ("s2", {"shared.bin": shared, "c.txt": "charlie\n"}),
    ]
    snapshots: list[SmallSnapshot] = []
    for system, files in sources:
        src = make_tree(root / f"src-{system}", files)
        with open_repository(LocalBackend(path), PASSWORD) as repo:
            result = run_backup(repo, BackupRequest(SourceSpec("path", str(src)), system=system, workers=1))
        label = f"{system}#{sum(s.system == system for s in snapshots) + 1}"
        snapshots.append(SmallSnapshot(label, result.snapshot_id, system, result.time.isoformat(), tree_digest(src)))
    own_slot, other_slot = _add_other_slot(path)
    index_of = _map_dependencies(path, snapshots)
    return SmallRepo(path, snapshots, index_of, other_slot, own_slot)


def _add_other_slot(path: Path) -> tuple[str, str]:
    """A second operator's slot whose id sorts before ours: the one every unlock tries first."""
    with open_repository(LocalBackend(path), PASSWORD) as repo:
        while True:
            slot_id, slot = wrap(
                repo.master,
                OTHER_PASSWORD.encode(),
                repo_id=repo.config.id,
                config_digest=config_digest(repo.config_raw),
                kdf=FAST_KDF,
            )
            if slot_id < repo.slot_id:
                repo.backend.save(KEYS_PREFIX + slot_id, slot)
                repo.added_slots.add(slot_id)  # as add_slot does: this session vouches for it, the manifest signs it
                repo.state_changed = True
                return repo.slot_id, slot_id


def _map_dependencies(path: Path, snapshots: list[SmallSnapshot]) -> dict[str, str]:
    with open_repository(LocalBackend(path), PASSWORD) as repo:
        index_of = {}
        for name in repo.index_names():
            for pack in repo.load_index(name).packs:
                index_of[pack_key(pack.name, pack.blob_type)] = f"index/{name}"
        by_id = {s.id: s for s in list_snapshots(repo)}
        for small in snapshots:
            snapshot = by_id[small.id]
            for tree_id in snapshot.tree:
                small.tree_packs.add(_pack_of(repo, tree_id))
            for entry in iter_tree(repo.read_blob, snapshot.tree):
                if entry["type"] == "file":
                    small.file_packs[entry["path"]] = {_pack_of(repo, c) for c in entry.get("chunks", ())}
    return index_of


def _pack_of(repo: Repository, blob_hex: str) -> str:
    location = repo.cache.lookup(bytes.fromhex(blob_hex))
    assert location is not None, blob_hex
    return pack_key(location.pack, location.blob_type)


def one_pack_repo(root: Path) -> tuple[Path, dict[str, bytes]]:
    """One snapshot of six files, one blob each, all six blobs in one data pack (in file order)."""
    path = root / "one-pack"
    init_repository(LocalBackend(path, create=True), PASSWORD, kdf=FAST_KDF, chunker=ChunkerParams(4096, 2048, 16384))
    rng = random.Random(6)
    files = {f"f{i}.bin": rng.randbytes(2000) for i in range(6)}  # under the chunker's minimum: one blob each
    src = make_tree(root / "one-pack-src", dict(files))
    with open_repository(LocalBackend(path), PASSWORD) as repo:  # one reader: one pack
        run_backup(repo, BackupRequest(SourceSpec("path", str(src)), system="s", workers=1))
    return path, files


def repo_state(path: Path) -> dict[str, str]:
    """Every object's SHA-256 by key: equal before and after means nothing was written."""
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }
