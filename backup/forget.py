"""Applying a retention policy to a repository's snapshots."""

from __future__ import annotations

from datetime import datetime

from backup.repository import SNAPSHOT_PREFIX, Repository
from backup.retention import Candidate, Decision, RetentionPolicy, apply_policy
from backup.snapshot import list_snapshots


def forget_snapshots(
    repo: Repository, policy: RetentionPolicy, *, now: datetime, system: str | None = None, dry_run: bool = False
) -> list[Decision]:
    """Remove the snapshot objects the policy does not keep. Their data stays until prune."""
    snapshots = list_snapshots(repo, system=system)
    decisions = apply_policy((Candidate(s.id, s.time, s.group) for s in snapshots), policy, now=now)
    if not dry_run:
        for decision in decisions:
            if not decision.keep:
                repo.backend.remove(SNAPSHOT_PREFIX + decision.id)
                repo.state_changed = True
    return decisions
