"""Applying a retention policy to a repository's snapshots."""

from __future__ import annotations

from datetime import datetime

from backup.manifest import sign_manifest
from backup.repository import SNAPSHOT_PREFIX, Repository
from backup.retention import Candidate, Decision, RetentionPolicy, apply_policy
from backup.snapindex import SnapshotIndex
from backup.snapshot import current, list_snapshots, relabelled


def forget_snapshots(
    repo: Repository,
    policy: RetentionPolicy,
    *,
    now: datetime,
    system: str | None = None,
    dry_run: bool = False,
    allow_empty: bool = False,
) -> list[Decision]:
    """Remove the snapshot objects the policy does not keep. Their data stays until prune.

    A dry run returns exactly the decisions a real run with the same ``now`` carries out:
    both come from one :func:`apply_policy` call; only the removal is skipped.

    The removal is signed before anything is removed: a check or an offsite verification
    running meanwhile then finds, at worst, snapshots the manifest already calls removed
    (a note), never a signed snapshot missing (damage). A crash between the two leaves the
    snapshots unsigned but in place; the next signature that lists them (in format 2 the next
    checkpoint) takes them back and forget can run again. Once removed they are signed away
    again, for a signature that listed them in between; until then, and after a crash there,
    such a signature names them missing.
    """
    # one system: the rows of the local snapshot index, not every snapshot of the repository decrypted
    index = SnapshotIndex(repo)
    everything = index.of_group_synced(system) if system else list_snapshots(repo, superseded=True)
    snapshots = current(everything)
    candidates = [Candidate(s.id, s.time, s.group) for s in snapshots]
    decisions = apply_policy(candidates, policy, now=now, allow_empty=allow_empty)
    doomed_now = {d.id for d in decisions if not d.keep}
    # the older labels of a forgotten snapshot go with it, or the newest of them would reappear
    for snapshot in snapshots:
        if snapshot.id in doomed_now:
            doomed_now.update(older.id for older in relabelled(snapshot, everything))
    doomed = frozenset(doomed_now)
    if doomed and not dry_run:
        sign_manifest(repo, without=doomed)
        for snapshot_id in sorted(doomed):
            repo.backend.remove(SNAPSHOT_PREFIX + snapshot_id)
        index.drop(sorted(doomed))
        # Signed away again now they are gone: a signature that listed them meanwhile signed them
        # back in (a backup closing with format 1; with format 2 a checkpoint — prune's, or the
        # one due every CHECKPOINT_EVERY links). The close's own signature would not do it in
        # format 2: its delta holds only what this process's journal noted.
        sign_manifest(repo, without=doomed)
    return decisions
