"""What a replication run copies and deletes: pure functions over two listings.

Commit order is the repository's own write order (DESIGN "backup/"): packs, then the index
files naming them, then snapshots, then the signed manifest. Copying in that order, phase by
phase, means the target is a consistent repository state after every phase, so a sync
killed anywhere leaves a target that verifies and a next run that resumes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from backup.manifest import MANIFEST_KEY, Manifest
from backup.manifeststate import CHAIN_PREFIX
from dc.errors import N_, Message
from replication.walobjects import is_wal_object
from storage.backend import ObjectInfo
from storage.naming import is_content_addressed

#: phases in commit order; the manifest is written after the last one.
PHASES = ("repository", "wal", "packs", "indexes", "snapshots")
#: how long the target keeps what the source no longer has, unless the site says otherwise
DEFAULT_DELETE_DELAY = timedelta(days=7)


def phase_of(key: str) -> str | None:
    """The phase that copies ``key``; ``None`` for what never leaves the primary (prune's state)."""
    if key == "config" or key.startswith("keys/"):
        return "repository"
    if key.startswith(("data/", "meta/")):
        return "packs"
    if key.startswith("index/"):
        return "indexes"
    if key.startswith("wal/"):
        # self-contained (it names no other object, a base backup's snapshot names none): first,
        # so the recovery point offsite moves on before a base backup's packs are sent, and an
        # offsite that holds a base backup holds the WAL archived while it was taken
        return "wal"
    if key.startswith(("snapshots/", CHAIN_PREFIX)):
        # a format-2 manifest's links name snapshots; the ``manifest`` head is copied last
        return "snapshots"
    # tombstones/ and locks/ describe an ongoing prune at the primary; the offsite has its own
    # deletion policy. The manifest is copied on its own, last.
    return None


@dataclass
class CopyPlan:
    #: source objects to copy, by phase, in commit order
    phases: dict[str, list[ObjectInfo]] = field(default_factory=lambda: {p: [] for p in PHASES})
    #: objects the target already holds (never sent again)
    present: int = 0
    #: fixed-name objects whose bytes differ between the sites (never overwritten blindly)
    conflicts: list[str] = field(default_factory=list)
    #: source snapshots the signed manifest does not cover
    unsigned: list[ObjectInfo] = field(default_factory=list)
    #: target objects the source no longer has (candidates for delayed deletion)
    extra_at_target: list[str] = field(default_factory=list)
    #: objects under ``wal/`` that are no WAL object of a repository (replication/walobjects.py): never sent
    malformed_wal: list[str] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(info.size for infos in self.phases.values() for info in infos)

    @property
    def objects(self) -> int:
        return sum(len(infos) for infos in self.phases.values())


def plan_copy(source: dict[str, ObjectInfo], target: dict[str, ObjectInfo], manifest: Manifest | None) -> CopyPlan:
    """Which source objects the target lacks, phase by phase.

    A content-addressed object present at the target with another size is damaged there and
    copied again; fixed-name objects (config, key slots) are only ever added, never
    overwritten, because a tampered primary must not be able to replace the offsite's keys.
    """
    plan = CopyPlan()
    signed = manifest.snapshot_ids if manifest is not None else None
    for key in sorted(source):
        info = source[key]
        phase = phase_of(key)
        if phase is None:
            continue
        if key.startswith("snapshots/") and signed is not None and key.removeprefix("snapshots/") not in signed:
            plan.unsigned.append(info)
            continue
        if phase == "wal" and not is_wal_object(info):
            plan.malformed_wal.append(key)
            continue
        existing = target.get(key)
        if existing is None:
            plan.phases[phase].append(info)
        elif existing.size != info.size:
            if is_content_addressed(key):
                plan.phases[phase].append(info)
            else:
                plan.conflicts.append(key)
        else:
            plan.present += 1
    plan.extra_at_target = sorted(
        key for key in target if key not in source and key not in (MANIFEST_KEY, "config") and phase_of(key)
    )
    return plan


def missing_referenced(
    manifest: Manifest, source: dict[str, ObjectInfo], target: dict[str, ObjectInfo]
) -> dict[str, str]:
    """Objects the manifest names that neither site holds intact: ``{key: problem}`` (truncation)."""
    problems: dict[str, str] = {}
    for key, size in manifest.referenced().items():
        found = source.get(key) or target.get(key)
        if found is None:
            problems[key] = Message(N_("missing at both sites"))
        elif size is not None and found.size != size and (target.get(key) is None or target[key].size != size):
            problems[key] = Message(N_("size {size}, the manifest says {expected}"), size=found.size, expected=size)
    return problems


@dataclass(frozen=True)
class DeletionDecision:
    #: delete now: missing at the source for longer than the delay, unreferenced, unlocked
    due: list[str]
    #: first seen missing in this run
    newly_missing: list[str]
    #: back at the source (or gone from the target): forget their missing-since time
    cleared: list[str]
    #: due by time but still under an Object Lock retention
    retained: list[str]


def decide_deletions(
    extra: list[str],
    pending: dict[str, datetime],
    protected: set[str],
    locks: dict[str, datetime],
    now: datetime,
    delay: timedelta,
) -> DeletionDecision:
    """The deletion delay at the target (DESIGN "replication/": deletions are never mirrored at once).

    An object is deleted only when it has been missing at the source for at least ``delay``,
    the target's accepted manifest does not reference it, and no Object Lock retention
    covers it (the storage would refuse anyway; asking would only fail).
    """
    extra_set = set(extra)
    due, newly, retained = [], [], []
    for key in extra:
        if key in protected:
            continue
        since = pending.get(key)
        if since is None:
            newly.append(key)
            continue
        if now - since < delay:
            continue
        until = locks.get(key)
        if until is not None and until > now:
            retained.append(key)
            continue
        due.append(key)
    cleared = [key for key in pending if key not in extra_set or key in protected]
    return DeletionDecision(sorted(due), sorted(newly), sorted(cleared), sorted(retained))
