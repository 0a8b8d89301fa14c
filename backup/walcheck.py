"""``check`` of the WAL archive: every segment the kept base backups need, without a gap.

Recovery replays WAL segment after segment: one missing segment ends every recovery that
needs to pass it, so the newest moment a base backup can reach is just before the gap. Check
names each gap (system, timeline, first and last missing segment) and each base backup whose
own WAL range the archive does not hold, and counts as a problem any WAL object that does not
authenticate as what its place says.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from backup.basebackup import TAG_SEGMENT_SIZE, TAG_START, TAG_STOP, TAG_TIMELINE
from backup.checkreport import CheckReport, Problem
from backup.repository import Repository
from backup.snapshot import Snapshot, list_snapshots
from backup.walarchive import WAL_PREFIX, system_dirs, system_key
from backup.walnames import is_segment
from backup.walseq import DEFAULT_SEGMENT_SIZE, SegmentId, gaps, parse_lsn, segment_name, segment_of
from dc.errors import N_, Message


@dataclass
class WalStatus:
    """One system's archive as check found it."""

    system: str
    segments: int = 0
    first: str | None = None
    last: str | None = None
    gaps: list[str] = field(default_factory=list)


def base_backups(snapshots: list[Snapshot], system: str) -> list[Snapshot]:
    """``system``'s base backups, oldest first."""
    return [s for s in snapshots if s.system == system and s.source_kind == "postgres-wal" and TAG_START in s.tags]


def first_needed(base: Snapshot) -> SegmentId:
    """The first segment a base backup's recovery reads."""
    size = int(base.tags.get(TAG_SEGMENT_SIZE, DEFAULT_SEGMENT_SIZE))
    return SegmentId(int(base.tags.get(TAG_TIMELINE, "1")), segment_of(parse_lsn(base.tags[TAG_START]), size))


def check_wal(repo: Repository, report: CheckReport) -> list[WalStatus]:
    snapshots = list_snapshots(repo, errors={})
    systems = {s.system for s in snapshots if s.system and s.source_kind == "postgres-wal"}
    statuses = []
    for system, files in sorted(system_dirs(repo).items()):
        statuses.append(_check_system(repo, system, files, base_backups(snapshots, system), report))
    for system in sorted(systems - {s.system for s in statuses}):
        report.problems.append(
            Problem(f"{WAL_PREFIX}", Message(N_("{system} has base backups but no WAL archived at all"), system=system))
        )
    return statuses


def _check_system(
    repo: Repository, system: str, files: dict[str, list[str]], bases: list[Snapshot], report: CheckReport
) -> WalStatus:
    size = int(bases[-1].tags.get(TAG_SEGMENT_SIZE, DEFAULT_SEGMENT_SIZE)) if bases else DEFAULT_SEGMENT_SIZE
    names = sorted(n for n in files if is_segment(n))
    status = WalStatus(system, len(names), names[0] if names else None, names[-1] if names else None)
    start = first_needed(bases[0]) if bases else None
    kept = names
    if start is not None:  # segments before the oldest base backup are no longer needed
        first = segment_name(start.timeline, start.segno, size)
        kept = [n for n in names if int(n[:8], 16) != start.timeline or n >= first]
    for gap in gaps(kept, size, start=start):
        status.gaps.append(gap.describe())
        report.problems.append(
            Problem(
                f"{WAL_PREFIX}{system_key(repo, system)}/",
                Message(N_("WAL archive of {system}: {value}"), system=system, value=gap.describe()),
            )
        )
    for base in bases:
        timeline = int(base.tags.get(TAG_TIMELINE, "1"))
        stop = segment_name(timeline, segment_of(parse_lsn(base.tags.get(TAG_STOP, base.tags[TAG_START])), size), size)
        newest = max((n for n in names if int(n[:8], 16) == timeline), default=None)
        if newest is None or newest < stop:
            report.problems.append(
                Problem(
                    f"snapshots/{base.id}",
                    Message(
                        N_("base backup of {system} needs WAL up to {stop}; the archive ends at {value}"),
                        system=system,
                        stop=stop,
                        value=newest or Message(N_("nothing")),
                    ),
                )
            )
    return status
