"""WAL that survived a disaster outside the archive: copied, checked, and chained onto it.

A synchronous standby's archive or a copy of the primary's ``pg_wal`` is untrusted input: it
may hold another cluster's segments, files cut short by the disaster, segments PostgreSQL
recycled under a future name and never wrote, or holes. Each file is first copied into a
private spool (so what is checked is what replay reads), then its long page header
(``XLogLongPageHeaderData``, PostgreSQL's ``access/xlog_internal.h``) must name this cluster's
system identifier, the timeline and segment its file name says, and the segment size; only an
unbroken run of such segments from where the archive ends is used. Everything else is named
with its reason and skipped: one bad file never stops the list of what was lost.
"""

from __future__ import annotations

import os
import re
import stat
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from backup.walseq import parse_segment, segment_name
from dc.errors import N_, BcpError, Message, message_of, os_reason

#: magic, info, timeline, page address, remaining length, (pad), system id, segment size, block size
_LONG_HEADER = struct.Struct("<HHIQI4xQII")
_XLP_LONG_HEADER = 0x0002
#: the reason given for a segment file PostgreSQL renamed ahead for reuse: normal in any ``pg_wal``
RECYCLED = "recycled by PostgreSQL"
_NAME = re.compile(r"^([0-9A-F]{24})(\.partial)?$")


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass
class Survivors:
    """What a set of surviving WAL adds to the archive, and what it could not."""

    #: spooled copies, in order, named as their segments: the run that continues the archive
    usable: list[Path] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    #: the first segment replay needed and found in no survivor (none: the run reaches the last survivor)
    missing: str | None = None


@dataclass(frozen=True)
class Cluster:
    """What the recovered cluster says survivors must match."""

    system_id: int
    timeline: int
    segment_size: int


def fetch_remote(url: str, into: Path, segment_size: int, known_hosts: str | None) -> list[Skipped]:
    """Download the segment files at ``url`` (``sftp://``, ``s3://``: a standby's archive on another
    machine) into the empty directory ``into``; a file of the wrong size is named, not fetched."""
    from storage.url import open_backend
    from storage.urlparts import redact

    skipped = []
    into.mkdir(parents=True, exist_ok=True)
    try:
        backend = open_backend(url, known_hosts=known_hosts)
        listed = [info for info in backend.list() if "/" not in info.key and _NAME.match(info.key)]
        for info in listed:
            where = f"{redact(url).rstrip('/')}/{info.key}"
            if info.size != segment_size:
                skipped.append(Skipped(where, _truncated(info.size, segment_size)))
                continue
            (into / info.key).write_bytes(backend.load(info.key))
    except BcpError as exc:
        skipped.append(Skipped(redact(url), Message(N_("unreadable: {why}"), why=message_of(exc))))
    return skipped


def _candidates(places: Iterable[Path]) -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    for place in places:
        try:
            names = sorted(os.listdir(place))
        except OSError as exc:
            found.append((place, Message(N_("unreadable: {why}"), why=os_reason(exc))))
            continue
        for name in names:
            if _NAME.match(name):
                found.append((place / name, ""))
    # a whole-named copy before any ``.partial`` of the same segment (the first good copy is
    # taken): a standby's .partial stops where it switched timeline, the primary's copy does not
    found.sort(key=lambda candidate: candidate[0].name.endswith(".partial"))
    return found


def _spool(path: Path, spool: Path, name: str, size: int) -> tuple[Path | None, str]:
    """Copy a regular file of exactly ``size`` bytes into ``spool``; never follows a link."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        return None, Message(N_("unreadable: {why}"), why=os_reason(exc))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None, Message(N_("not a regular file"))
    with os.fdopen(fd, "rb") as src:
        data = src.read(size + 1)
    if len(data) != size:
        return None, _truncated(len(data), size)
    copy = spool / name
    copy.write_bytes(data)
    return copy, ""


def _truncated(size: int, segment_size: int) -> Message:
    return Message(N_("truncated: {size} bytes, a segment has {segment_size}"), size=size, segment_size=segment_size)


def _header_problem(copy: Path, name: str, cluster: Cluster) -> str:
    with copy.open("rb") as f:
        head = f.read(_LONG_HEADER.size)
    _magic, info, tli, pageaddr, _rem, sysid, seg_size, _blcksz = _LONG_HEADER.unpack(head)
    seg = parse_segment(name, cluster.segment_size)
    if not info & _XLP_LONG_HEADER or seg_size != cluster.segment_size:
        return Message(N_("not a WAL segment of this cluster's segment size"))
    if sysid != cluster.system_id:
        return Message(
            N_("belongs to another database system (system identifier {sysid}, this one {ours})"),
            sysid=sysid,
            ours=cluster.system_id,
        )
    if tli != seg.timeline or seg.timeline != cluster.timeline:
        return Message(N_("timeline {tli}, the archive ends on timeline {ours}"), tli=tli, ours=cluster.timeline)
    if pageaddr != seg.segno * cluster.segment_size:
        return Message(
            N_("recycled by PostgreSQL under this name and never written (its header names another segment)")
        )
    return ""


def vet_survivors(places: Iterable[Path], spool: Path, cluster: Cluster, end_lsn: int) -> Survivors:
    """The survivors that continue the archive whose replay ended at ``end_lsn``, spooled."""
    result = Survivors()
    size = cluster.segment_size
    good: dict[int, tuple[Path, Path]] = {}
    for path, problem in _candidates(places):
        if problem:
            result.skipped.append(Skipped(str(path), problem))
            continue
        name = path.name[:24]
        if parse_segment(name, size).segno in good or (spool / name).exists():
            result.skipped.append(Skipped(str(path), Message(N_("a second copy of a segment already taken"))))
            continue
        copy, problem = _spool(path, spool, name, size)
        if copy is not None:
            problem = _header_problem(copy, name, cluster)
            if problem:
                copy.unlink()
        if problem or copy is None:
            result.skipped.append(Skipped(str(path), problem))
            continue
        good[parse_segment(name, size).segno] = (copy, path)
    first = end_lsn // size
    # The segment holding the archive's end is in the archive unless the end sits on its first byte.
    segno = first if first in good or end_lsn % size == 0 else first + 1
    while segno in good:
        result.usable.append(good.pop(segno)[0])
        segno += 1
    if good and any(s > segno for s in good):
        result.missing = segment_name(cluster.timeline, segno, size)
    for later in sorted(s for s in good if s > segno):
        result.skipped.append(
            Skipped(
                str(good[later][1]), Message(N_("after a hole: {missing} survived nowhere"), missing=result.missing)
            )
        )
    for copy, _origin in good.values():
        copy.unlink()
    return result
