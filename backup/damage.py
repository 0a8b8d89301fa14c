"""Which files of which snapshots a set of damaged packs and blobs makes unrestorable.

``check`` uses it to name the snapshots a problem breaks, ``repair snapshots`` to decide what
to drop. A blob counts as readable while at least one indexed copy of it lies in a pack that
is present, has its indexed size and (when the data was read) authenticated; restore falls
back to another copy the same way (:meth:`~backup.repository.Repository.read_blob`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from backup.repository import Repository
from backup.snapshot import Snapshot
from backup.tree import Entry, iter_tree
from dc.errors import N_, BcpError, Message, message_of

#: why a blob cannot be read (Messages: check and repair show them in the operator's language)
NOT_INDEXED = Message(N_("is not in any index"))


@dataclass
class Damage:
    """What is known to be unreadable: whole packs, and single blobs (pack name, blob id)."""

    packs: set[str] = field(default_factory=set)
    blobs: set[tuple[str, bytes]] = field(default_factory=set)
    #: packs in ``packs`` only because their size is wrong: reading them says which blobs survive
    resized: set[str] = field(default_factory=set)

    def blob_problem(self, repo: Repository, chunk_id: bytes) -> str | None:
        """Why no copy of the blob can be read, or None when one can."""
        copies = repo.cache.locations(chunk_id)
        if not copies:
            return NOT_INDEXED
        if all(c.pack in self.packs or (c.pack, chunk_id) in self.blobs for c in copies):
            pack = copies[0].pack
            if pack in self.packs:
                return Message(N_("lies in damaged pack {pack}"), pack=pack[:16])
            return Message(N_("is damaged in pack {pack}"), pack=pack[:16])
        return None


@dataclass(frozen=True)
class DamagedFile:
    path: str
    reason: str


@dataclass(frozen=True)
class TreeVerdict:
    """One tree blob: whether it reads, and which of the files it lists cannot be restored."""

    tree_id: str
    #: why the tree blob itself cannot be read (its entries, and so their paths, are lost)
    unreadable: str | None = None
    damaged_files: tuple[DamagedFile, ...] = ()
    #: data blobs of damaged files that no index names (``repair index`` may find them in a pack)
    unindexed_blobs: frozenset[bytes] = frozenset()

    @property
    def intact(self) -> bool:
        return self.unreadable is None and not self.damaged_files


def judge_tree(repo: Repository, tree_id: str, damage: Damage) -> TreeVerdict:
    problem = damage.blob_problem(repo, bytes.fromhex(tree_id))
    if problem:
        lost = frozenset({bytes.fromhex(tree_id)}) if problem == NOT_INDEXED else frozenset()
        return TreeVerdict(tree_id, unreadable=problem, unindexed_blobs=lost)
    try:
        entries = list(iter_tree(repo.read_blob, (tree_id,)))
    except BcpError as exc:
        return TreeVerdict(tree_id, unreadable=message_of(exc))
    damaged: list[DamagedFile] = []
    unindexed: set[bytes] = set()
    for entry in entries:
        reason = file_problem(repo, entry, damage, unindexed)
        if reason:
            damaged.append(DamagedFile(entry["path"], reason))
    return TreeVerdict(tree_id, damaged_files=tuple(damaged), unindexed_blobs=frozenset(unindexed))


def file_problem(repo: Repository, entry: Entry, damage: Damage, unindexed: set[bytes] | None = None) -> str | None:
    """Why a tree entry cannot be restored (the first unreadable blob), or None."""
    first = None
    for chunk_hex in entry.get("chunks", ()):
        chunk_id = bytes.fromhex(chunk_hex)
        problem = damage.blob_problem(repo, chunk_id)
        if problem:
            if unindexed is not None and problem == NOT_INDEXED:
                unindexed.add(chunk_id)
            first = first or Message(N_("data blob {blob} {problem}"), blob=chunk_hex[:16], problem=problem)
    return first


class SnapshotJudge:
    """Verdicts per snapshot, each tree blob judged once however many snapshots share it."""

    def __init__(self, repo: Repository, damage: Damage) -> None:
        self.repo = repo
        self.damage = damage
        self._trees: dict[str, TreeVerdict] = {}

    def trees(self, snapshot: Snapshot) -> list[TreeVerdict]:
        verdicts = []
        for tree_id in snapshot.tree:
            verdict = self._trees.get(tree_id)
            if verdict is None:
                verdict = self._trees[tree_id] = judge_tree(self.repo, tree_id, self.damage)
            verdicts.append(verdict)
        return verdicts

    def seen(self, tree_id: str) -> bool:
        return tree_id in self._trees

    def unindexed_blobs(self) -> set[bytes]:
        return {blob for verdict in self._trees.values() for blob in verdict.unindexed_blobs}


def damaged_paths(verdicts: Iterable[TreeVerdict]) -> list[str]:
    return [f.path for v in verdicts for f in v.damaged_files]
