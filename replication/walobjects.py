"""Which objects under ``wal/`` are WAL objects of a repository: shipped offsite, everything else stays.

Replication holds no key, so it cannot open a WAL object; what it can check is its shape
(backup/walarchive.py): ``wal/<system>/<file name>/<SHA-256 of the stored bytes>``, the system
a name a configuration can hold, the file name one PostgreSQL archives (a segment, a
``.partial``, ``.history`` or ``.backup`` file), and a size a sealed file of that kind can
have. Anything else under ``wal/`` was not written by ``wal push``: an object planted at the
primary (by a compromised host or a tool writing to the bucket) would otherwise ride the
offsite's Object Lock retention as if it were history, and the follower would ship it every
second. Such objects are left where they are and named, never copied.
"""

from __future__ import annotations

import re

from backup.objectsize import MAX_BYTES, SEAL_OVERHEAD
from storage.backend import ObjectInfo

_SYSTEM = r"[a-z0-9][a-z0-9_-]{0,62}"
_HASH = r"[0-9a-f]{64}"
#: segments and partial segments: up to PostgreSQL's largest segment, sealed
_SEGMENT_KEY = re.compile(rf"wal/{_SYSTEM}/[0-9A-F]{{24}}(\.partial)?/{_HASH}")
#: timeline history and backup history files: a few lines of text each
_SMALL_KEY = re.compile(rf"wal/{_SYSTEM}/([0-9A-F]{{8}}\.history|[0-9A-F]{{24}}\.[0-9A-F]{{8}}\.backup)/{_HASH}")
#: the sealed header alone names the file's SHA-256 in hex
MIN_STORED = SEAL_OVERHEAD + 64
MAX_SEGMENT_STORED = MAX_BYTES["wal"]
#: 1 MiB of history (thousands of timeline switches), a header and the seal
MAX_SMALL_STORED = (1 << 20) + (64 << 10) + SEAL_OVERHEAD


def is_wal_object(info: ObjectInfo) -> bool:
    """``info`` has the name and size of an object ``wal push`` stores (pure)."""
    if info.size < MIN_STORED:
        return False
    if _SEGMENT_KEY.fullmatch(info.key):
        return info.size <= MAX_SEGMENT_STORED
    if _SMALL_KEY.fullmatch(info.key):
        return info.size <= MAX_SMALL_STORED
    return False
