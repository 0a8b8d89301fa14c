"""Retention of the WAL archive: WAL lives as long as the oldest kept base backup needs it.

A base backup can be recovered only with every segment from its own start onwards, so after
``forget`` the segments older than the oldest remaining base backup's first segment serve no
recovery and are removed; everything from there on stays. A system with no base backup left
keeps all of its WAL: nothing says which of it is unneeded. Timeline history files are kept
(a few bytes each; recovery to a later timeline reads all of them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from backup.repository import Repository
from backup.snapshot import list_snapshots
from backup.walarchive import archived_names
from backup.walcheck import base_backups, first_needed
from backup.walseq import DEFAULT_SEGMENT_SIZE, SegmentId, parse_segment, segment_name

#: what precedes the first segment of a name: a segment, ``.partial`` or ``.backup`` file
_SEGMENT_CHARS = 24


@dataclass
class WalForget:
    system: str
    #: the first segment the oldest kept base backup needs (kept, with everything after it)
    keep_from: str
    removed: list[str] = field(default_factory=list)
    kept: int = 0


def unneeded(names: list[str], start: SegmentId, segment_size: int = DEFAULT_SEGMENT_SIZE) -> list[str]:
    """The archived file names older than ``start`` (pure: the policy, without storage)."""
    found = []
    for name in names:
        if name.endswith(".history") or len(name) < _SEGMENT_CHARS:
            continue
        seg = parse_segment(name[:_SEGMENT_CHARS], segment_size)
        if seg.timeline <= start.timeline and seg.segno < start.segno:
            found.append(name)
    return sorted(found)


def forget_wal(
    repo: Repository, *, system: str | None = None, forgotten: frozenset[str] = frozenset(), dry_run: bool = False
) -> list[WalForget]:
    """Remove (unless ``dry_run``) WAL that no kept base backup of each postgres-wal system needs.

    ``forgotten``: snapshots forget removes (or, in a dry run, would remove) in the same run.
    """
    snapshots = [s for s in list_snapshots(repo, system=system) if s.id not in forgotten]
    systems = sorted({s.system for s in snapshots if s.system and s.source_kind == "postgres-wal"})
    results = []
    for name in systems:
        bases = base_backups(snapshots, name)
        if not bases:
            continue
        oldest = min(bases, key=lambda b: first_needed(b))
        start = first_needed(oldest)
        size = int(oldest.tags.get("wal_segment_size", DEFAULT_SEGMENT_SIZE))
        files = archived_names(repo, name)
        doomed = unneeded(list(files), start, size)
        result = WalForget(name, segment_name(start.timeline, start.segno, size), doomed, len(files) - len(doomed))
        if not dry_run:
            for file_name in doomed:
                for key in files[file_name]:
                    repo.backend.remove(key)
        results.append(result)
    return results
