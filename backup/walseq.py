"""WAL positions and segment names: pure arithmetic, no I/O.

A segment's name is its timeline, then the segment number split into a "log id" and the
segment within it (PostgreSQL's ``XLogFileName``): with 16 MiB segments, 256 segments per log
id. What the archive must hold is every segment from a base backup's start to the newest one,
so gaps are found by walking those numbers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise

from dc.errors import N_, UsageError

DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024
_LSN = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")


def parse_lsn(text: str) -> int:
    """``16/B374D848`` as a 64-bit position."""
    match = _LSN.fullmatch(text.strip())
    if not match:
        raise UsageError(N_("'{text}' is not a WAL position (e.g. 0/3000028)"), text=text)
    return (int(match[1], 16) << 32) | int(match[2], 16)


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def _per_log(segment_size: int) -> int:
    return 0x100000000 // segment_size


def segment_name(timeline: int, segno: int, segment_size: int = DEFAULT_SEGMENT_SIZE) -> str:
    per = _per_log(segment_size)
    return f"{timeline:08X}{segno // per:08X}{segno % per:08X}"


def segment_of(lsn: int, segment_size: int = DEFAULT_SEGMENT_SIZE) -> int:
    return lsn // segment_size


@dataclass(frozen=True, order=True)
class SegmentId:
    timeline: int
    segno: int


def parse_segment(name: str, segment_size: int = DEFAULT_SEGMENT_SIZE) -> SegmentId:
    return SegmentId(int(name[:8], 16), int(name[8:16], 16) * _per_log(segment_size) + int(name[16:24], 16))


@dataclass(frozen=True)
class Gap:
    timeline: int
    #: first and last missing segment names
    first: str
    last: str
    count: int

    def describe(self) -> str:
        span = self.first if self.count == 1 else f"{self.first} .. {self.last}"
        return f"{self.count} segment(s) missing on timeline {self.timeline}: {span}"


def gaps(
    names: Iterable[str], segment_size: int = DEFAULT_SEGMENT_SIZE, *, start: SegmentId | None = None
) -> list[Gap]:
    """Missing segments between the first (or ``start``) and the last archived one, per timeline.

    A later timeline branches off an earlier one, so each timeline is judged on its own
    range; ``start`` (the oldest kept base backup's first segment) applies to its timeline.
    """
    by_timeline: dict[int, set[int]] = {}
    for name in names:
        seg = parse_segment(name, segment_size)
        by_timeline.setdefault(seg.timeline, set()).add(seg.segno)
    found = []
    for timeline, numbers in sorted(by_timeline.items()):
        ordered = sorted(numbers)
        if start is not None and start.timeline == timeline and start.segno < ordered[0]:
            found.append(_gap(timeline, start.segno, ordered[0] - 1, segment_size))
        # Between neighbours, never segment by segment: one planted name far ahead must not
        # make check walk billions of numbers.
        for before, after in pairwise(ordered):
            if after > before + 1:
                found.append(_gap(timeline, before + 1, after - 1, segment_size))
    return found


def _gap(timeline: int, first: int, last: int, segment_size: int) -> Gap:
    return Gap(
        timeline,
        segment_name(timeline, first, segment_size),
        segment_name(timeline, last, segment_size),
        last - first + 1,
    )
