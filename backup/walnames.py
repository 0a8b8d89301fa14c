"""WAL file names PostgreSQL archives, and what an archived file is: the light part of WAL archiving.

Its own module because ``wal get`` and ``wal push`` answer from the spool (backup/walspool.py)
before anything else is imported: a process per WAL file must not import the repository
machinery to rename a file it already holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dc.errors import N_, UsageError

#: 24 hex digits: timeline, log id, segment of the log id
_SEGMENT = re.compile(r"[0-9A-F]{24}")
_ARCHIVED = re.compile(r"[0-9A-F]{24}(\.partial|\.[0-9A-F]{8}\.backup)?|[0-9A-F]{8}\.history")


def check_name(name: str) -> str:
    """A name PostgreSQL archives; anything else (a path, a stray) is refused before any I/O."""
    if not _ARCHIVED.fullmatch(name):
        raise UsageError(
            N_("'{name}' is not a WAL file name PostgreSQL archives (segment, .history, .backup, .partial)"), name=name
        )
    return name


def is_segment(name: str) -> bool:
    return _SEGMENT.fullmatch(name) is not None


@dataclass(frozen=True)
class WalFile:
    """One archived file, as its sealed header describes it."""

    system: str
    name: str
    size: int
    sha256: str
    pushed: str
    #: the object it is stored in
    key: str


@dataclass(frozen=True)
class PushResult:
    system: str
    name: str
    size: int
    #: bytes stored (0 when the archive already held these bytes)
    stored: int
    #: the archive already held this very file
    already_archived: bool
    key: str
    #: SHA-256 of the bytes archived (read once: what the push stored is what a spool record names)
    sha256: str
