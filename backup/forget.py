"""Applying a retention policy to a repository's snapshots."""

from __future__ import annotations

from datetime import datetime

from backup.repository import SNAPSHOT_PREFIX, Repository
from backup.retention import Candidate, Decision, RetentionPolicy, apply_policy
from backup.snapshot import list_snapshots


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
    """
    snapshots = list_snapshots(repo, system=system)
    candidates = [Candidate(s.id, s.time, s.group) for s in snapshots]
    decisions = apply_policy(candidates, policy, now=now, allow_empty=allow_empty)
    if not dry_run:
        for decision in decisions:
            if not decision.keep:
                repo.backend.remove(SNAPSHOT_PREFIX + decision.id)
                repo.state_changed = True
    return decisions
