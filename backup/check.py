"""Verifying a repository: structure always, and with ``read_data`` every byte.

Structure: every index file authenticates; every indexed pack exists with its recorded
size; every snapshot authenticates and every blob its tree names is indexed. With
``read_data`` each pack (or a rolling ``subset``) is downloaded, its SHA-256 compared with
its name, its header and every blob decrypted and checked against its keyed id, and the
header compared with the index. Each problem names the object; the report lists the
snapshots that a problem makes unrestorable. Check never writes to the repository.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from backup import compress
from backup.errors import CorruptObject
from backup.pack import PACK_DIRS, iter_blobs, pack_key
from backup.repository import Repository
from backup.snapshot import Snapshot, list_snapshots
from backup.tree import iter_tree
from dc.errors import BcpError, UsageError

ProgressFn = Callable[[int], None]


@dataclass(frozen=True)
class Problem:
    object: str
    message: str


@dataclass
class CheckReport:
    snapshots: int = 0
    index_files: int = 0
    packs: int = 0
    packs_read: int = 0
    blobs_read: int = 0
    bytes_read: int = 0
    unreferenced_packs: int = 0
    problems: list[Problem] = field(default_factory=list)
    affected_snapshots: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def parse_subset(text: str) -> tuple[int, int]:
    """``N/M``: the N-th of M slices (1-based), so M runs read every pack exactly once."""
    try:
        n, m = (int(x) for x in text.split("/"))
    except ValueError:
        raise UsageError(f"invalid subset '{text}': use N/M, e.g. 1/7") from None
    if not 1 <= n <= m:
        raise UsageError(f"invalid subset '{text}': need 1 <= N <= M")
    return n, m


def in_subset(pack_name: str, subset: tuple[int, int] | None) -> bool:
    if subset is None:
        return True
    n, m = subset
    return int(pack_name[:8], 16) % m == n - 1


def check_repository(
    repo: Repository,
    *,
    read_data: bool = False,
    subset: tuple[int, int] | None = None,
    progress: ProgressFn | None = None,
) -> CheckReport:
    report = CheckReport()
    bad_packs: set[str] = set()
    # Re-read every index file: the cache trusts names it has seen, check must not.
    broken = dict(repo.broken_indexes)
    soundly_indexed: set[str] = set()
    names = repo.index_names()
    report.index_files = len(names)
    for name in sorted(names - set(broken)):
        try:
            soundly_indexed.update(pack.name for pack in repo.load_index(name).packs)
        except BcpError as exc:
            broken[name] = exc.message
    for name, message in sorted(broken.items()):
        report.problems.append(Problem(f"index/{name}", message))

    stored = {}
    for blob_type in PACK_DIRS:
        for info in repo.backend.list(PACK_DIRS[blob_type] + "/"):
            stored[info.key.rsplit("/", 1)[-1]] = info.size
    indexed = repo.cache.packs()
    report.packs = len(indexed)
    indexed_names = set()
    for name, blob_type, size in indexed:
        indexed_names.add(name)
        key = pack_key(name, blob_type)
        if name not in soundly_indexed:
            bad_packs.add(name)  # only a damaged index locates its blobs
        elif name not in stored:
            report.problems.append(Problem(key, "pack is missing"))
            bad_packs.add(name)
        elif stored[name] != size:
            report.problems.append(Problem(key, f"pack has {stored[name]} bytes, the index says {size} (truncated?)"))
            bad_packs.add(name)
    report.unreferenced_packs = len(set(stored) - indexed_names)

    if read_data:
        for name, blob_type, _size in indexed:
            if name in bad_packs or not in_subset(name, subset):
                continue
            problem = _read_pack(repo, name, blob_type, report)
            if problem:
                report.problems.append(problem)
                bad_packs.add(name)
            if progress:
                progress(1)

    snapshot_errors: dict[str, str] = {}
    snapshots = list_snapshots(repo, errors=snapshot_errors)
    report.snapshots = len(snapshots) + len(snapshot_errors)
    for snapshot_id, message in sorted(snapshot_errors.items()):
        report.problems.append(Problem(f"snapshots/{snapshot_id}", message))
        report.affected_snapshots.append(snapshot_id)
    tree_verdicts: dict[str, bool] = {}
    for snapshot in snapshots:
        if not _snapshot_intact(repo, snapshot, bad_packs, tree_verdicts, report):
            report.affected_snapshots.append(snapshot.id)
    return report


def _read_pack(repo: Repository, name: str, blob_type: int, report: CheckReport) -> Problem | None:
    key = pack_key(name, blob_type)
    try:
        data = repo.backend.load(key)
    except BcpError as exc:
        return Problem(key, exc.message)
    report.packs_read += 1
    report.bytes_read += len(data)
    if hashlib.sha256(data).hexdigest() != name:
        return Problem(key, "pack content does not match its name (bit rot or tampering)")
    indexed = {row[0]: row for row in repo.cache.pack_entries(name)}
    try:
        seen: set[bytes] = set()
        for entry, payload in iter_blobs(repo.master, repo.repo_id, data, key):
            plain = compress.decode(payload, entry.flags, entry.raw_length, f"blob {entry.id.hex()[:16]} in {key}")
            if repo.master.chunk_id_of(plain) != entry.id:
                return Problem(key, f"blob {entry.id.hex()[:16]} does not match its id")
            row = indexed.get(entry.id)
            if row is not None and (row[3], row[4]) != (entry.offset, entry.length):
                return Problem(key, f"blob {entry.id.hex()[:16]} is at a different place than the index says")
            seen.add(entry.id)
            report.blobs_read += 1
    except CorruptObject as exc:
        return Problem(key, exc.message)
    missing = indexed.keys() - seen
    if missing:
        return Problem(key, f"{len(missing)} blob(s) the index places in this pack are not in its header")
    return None


def _snapshot_intact(
    repo: Repository, snapshot: Snapshot, bad_packs: set[str], verdicts: dict[str, bool], report: CheckReport
) -> bool:
    """Whether every blob the snapshot needs is indexed, in a sound pack, and every tree blob reads."""
    intact = True
    for tree_id in snapshot.tree:
        verdict = verdicts.get(tree_id)
        if verdict is None:
            verdict = verdicts[tree_id] = _tree_blob_intact(repo, snapshot, tree_id, bad_packs, report)
        intact = intact and verdict
    return intact


def _blob_sound(repo: Repository, chunk_id: bytes, bad_packs: set[str]) -> str | None:
    copies = repo.cache.locations(chunk_id)
    if not copies:
        return "is not in any index"
    if all(copy.pack in bad_packs for copy in copies):
        return f"lies in damaged pack {copies[0].pack[:16]}"
    return None


def _tree_blob_intact(
    repo: Repository, snapshot: Snapshot, tree_id: str, bad_packs: set[str], report: CheckReport
) -> bool:
    where = f"snapshot {snapshot.short_id} tree blob {tree_id[:16]}"
    problem = _blob_sound(repo, bytes.fromhex(tree_id), bad_packs)
    if problem:
        report.problems.append(Problem(where, problem))
        return False
    try:
        entries = list(iter_tree(repo.read_blob, (tree_id,)))
    except BcpError as exc:
        report.problems.append(Problem(where, exc.message))
        return False
    intact = True
    for entry in entries:
        for chunk_hex in entry.get("chunks", ()):
            problem = _blob_sound(repo, bytes.fromhex(chunk_hex), bad_packs)
            if problem:
                if intact:  # one line per damaged tree blob is enough to act on
                    report.problems.append(
                        Problem(
                            f"snapshot {snapshot.short_id} file {entry['path']!r}",
                            f"data blob {chunk_hex[:16]} {problem}",
                        )
                    )
                intact = False
    return intact
