"""``repair snapshots``: rewrite snapshots without what cannot be restored, as restic's does.

A damaged blob makes the files that use it unrestorable, and an unreadable tree blob loses the
entries it listed; everything else in the snapshot is still good. The rewritten snapshot keeps
the original's time, system and source, drops each damaged file whole (a file with a hole is
worse than no file: restore verifies every file's SHA-256), records in its summary what was
dropped and which snapshot it replaces, and is committed and signed like any new snapshot.
Only then does the original go. A snapshot object that cannot be read at all is removed too,
unless its bytes are another bcpctl object (``repair index`` puts those back).

Run ``repair index`` first: a blob that a lost index file no longer names is not damaged, and
the rebuilt index finds it again.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from backup.check import collect_damage
from backup.checkreport import Problem
from backup.damage import SnapshotJudge
from backup.errors import CorruptObject
from backup.kindnames import noun
from backup.layout import identify
from backup.prune import condemned_packs
from backup.repository import SNAPSHOT_PREFIX, Repository
from backup.snapshot import Snapshot, list_snapshots, load_snapshot, save_snapshot
from backup.tree import TreeWriter, iter_tree
from backup.writer import BlobWriter
from dc.errors import N_, BcpError, Message

#: paths of dropped files recorded in a rewritten snapshot; the count is always complete
_PATHS_RECORDED = 1000


@dataclass
class SnapshotRepair:
    id: str
    system: str | None
    time: str
    verdict: str
    dropped_files: list[str] = field(default_factory=list)
    lost_tree_blobs: list[str] = field(default_factory=list)


@dataclass
class RepairPlan:
    snapshots: list[SnapshotRepair] = field(default_factory=list)
    #: snapshot objects that cannot be read and are no other bcpctl object
    unreadable: list[Problem] = field(default_factory=list)
    #: unreadable snapshot objects that are another object: left for ``repair index``
    misplaced: list[Problem] = field(default_factory=list)
    applied: bool = False
    #: ``(original, replacement or None when nothing restorable was left)``
    rewritten: list[tuple[str, str | None]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def needed(self) -> bool:
        return bool(self.snapshots or self.unreadable)

    @property
    def unrestorable(self) -> int:
        return len(self.snapshots) + len(self.unreadable)


def plan_repair(repo: Repository, *, read_data: bool = False) -> RepairPlan:
    """Which snapshots cannot be fully restored, and what a repair would drop from each."""
    plan = RepairPlan()
    errors: dict[str, str] = {}
    snapshots = list_snapshots(repo, errors=errors, superseded=True)
    listing = {info.key: info for info in repo.backend.list(SNAPSHOT_PREFIX)}
    for snapshot_id, message in sorted(errors.items()):
        key = SNAPSHOT_PREFIX + snapshot_id
        try:
            found = identify(repo, key, repo.load_any(key), listing)
        except BcpError:
            continue
        if found.kind not in (None, "snapshot") and not found.copy_of:
            plan.misplaced.append(
                Problem(key, Message(N_("a {kind}: 'bcpctl repair index' puts it back"), kind=noun(found.kind)))
            )
        else:
            plan.unreadable.append(
                Problem(key, Message(N_("a copy of {key}"), key=found.copy_of) if found.copy_of else message)
            )
    judge = SnapshotJudge(repo, collect_damage(repo, read_data=read_data))
    for snapshot in snapshots:
        verdicts = judge.trees(snapshot)
        if all(v.intact for v in verdicts):
            continue
        dropped = [f.path for v in verdicts for f in v.damaged_files]
        lost = [v.tree_id for v in verdicts if v.unreadable]
        parts = [f"{len(dropped)} damaged file(s)"] if dropped else []
        parts += [f"{len(lost)} unreadable tree blob(s)"] if lost else []
        if len(lost) == len(verdicts):
            parts.append("nothing restorable left")
        plan.snapshots.append(
            SnapshotRepair(snapshot.id, snapshot.system, snapshot.time.isoformat(), ", ".join(parts), dropped, lost)
        )
    return plan


def apply_repair(repo: Repository, plan: RepairPlan, *, now: datetime | None = None) -> RepairPlan:
    """Commit a rewritten snapshot for each damaged one, then remove the originals."""
    now = now or datetime.now(UTC)
    repo.cache.exclude_packs(condemned_packs(repo))
    for item in plan.snapshots:
        original = load_snapshot(repo, item.id)
        replacement = _rewrite(repo, original, item, now)
        # The replacement is committed before the original goes: a crash leaves both, never neither.
        repo.backend.remove(SNAPSHOT_PREFIX + original.id)
        repo.state_changed = True
        repo.journal.checkpoint()  # a snapshot replaced outside a forget: a full state
        plan.rewritten.append((original.id, replacement))
        plan.removed.append(SNAPSHOT_PREFIX + original.id)
    for problem in plan.unreadable:
        repo.backend.remove(problem.object)
        repo.state_changed = True
        repo.journal.checkpoint()
        plan.removed.append(problem.object)
    plan.applied = True
    return plan


def _rewrite(repo: Repository, original: Snapshot, item: SnapshotRepair, now: datetime) -> str | None:
    """Commit the snapshot without exactly what the plan (as confirmed) drops; return its id."""
    lost = set(item.lost_tree_blobs)
    dropped = set(item.dropped_files)
    writer = BlobWriter(repo)
    kept = 0
    try:
        tree = TreeWriter(writer.add_tree, repo.master.chunker_seed)
        for tree_id in original.tree:
            if tree_id in lost:
                continue
            try:
                entries = list(iter_tree(repo.read_blob, (tree_id,)))
            except CorruptObject:  # damaged since the plan, or found only now: lost like the others
                item.lost_tree_blobs.append(tree_id)
                continue
            for entry in entries:
                if entry["path"] not in dropped:
                    tree.add(entry)
                    kept += 1
        tree_ids = tree.finish()
        writer.flush()
    finally:
        writer.close()
    if not kept:
        return None
    repaired = {
        "original": original.id,
        "time": now.isoformat(timespec="seconds"),
        "dropped_files": len(item.dropped_files),
        "dropped_paths": item.dropped_files[:_PATHS_RECORDED],
        "lost_tree_blobs": item.lost_tree_blobs,
    }
    snapshot = replace(
        original,
        tree=tree_ids,
        tags={**original.tags, "repaired": "true"},
        summary={**original.summary, "repair": repaired},
        id="",
    )
    return save_snapshot(repo, snapshot).id
