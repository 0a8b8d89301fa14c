"""What a base backup snapshot holds and records: its files and its tags.

The data directory is ``base.tar``; each tablespace outside it is one more tar,
``tablespace-<oid>.tar``, as ``pg_basebackup -Ft`` wrote it. The tablespaces are listed in the
``wal_tablespaces`` tag (OID, name, the primary's location), so a restore knows what it must
place and where it came from before it reads a byte of the tars; ``base.tar``'s own
``tablespace_map`` must name the same OIDs (backup/pgcluster.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from backup.errors import CorruptObject
from dc.errors import N_

#: the data directory's stream in the snapshot tree
BASE_NAME = "base.tar"
#: snapshot tags of a base backup
TAG_START = "wal_start_lsn"
TAG_STOP = "wal_stop_lsn"
TAG_TIMELINE = "wal_timeline"
TAG_SEGMENT_SIZE = "wal_segment_size"
TAG_END = "backup_end"
#: JSON list of the tablespaces outside the data directory: ``[{"oid", "name", "location"}]``
TAG_TABLESPACES = "wal_tablespaces"


@dataclass(frozen=True)
class Tablespace:
    oid: int
    name: str
    #: where the primary keeps it (never written by a restore)
    location: str

    @property
    def file(self) -> str:
        return tablespace_file(self.oid)


def tablespace_file(oid: int) -> str:
    return f"tablespace-{oid}.tar"


def encode_tablespaces(spaces: list[Tablespace]) -> str:
    return json.dumps([asdict(s) for s in sorted(spaces, key=lambda s: s.oid)], ensure_ascii=False)


def recorded_tablespaces(tags: Mapping[str, str], short_id: str) -> list[Tablespace]:
    """The tablespaces a base backup recorded (none for one without the tag)."""
    raw = tags.get(TAG_TABLESPACES)
    if raw is None:
        return []
    try:
        spaces = [Tablespace(int(s["oid"]), str(s["name"]), str(s["location"])) for s in json.loads(raw)]
    except (ValueError, TypeError, KeyError):
        spaces = []
    if not spaces or len({s.oid for s in spaces}) != len(spaces) or any(s.oid <= 0 for s in spaces):
        raise CorruptObject(
            N_("base backup {short_id} records its tablespaces unreadably: {raw}"), short_id=short_id, raw=raw[:200]
        )
    return spaces


def parse_tablespace_map(text: str) -> dict[int, str]:
    """``tablespace_map`` (ValueError when unreadable): ``<oid> <path>`` a line, a newline, carriage return or backslash
    in the path escaped with a backslash (PostgreSQL's ``do_pg_backup_start``)."""
    found: dict[int, str] = {}
    line: list[str] = []
    escaped = False
    for ch in text + "\n":
        if not escaped and ch == "\\":
            escaped = True
            continue
        if not escaped and ch in "\r\n":
            if entry := "".join(line):
                oid, _, path = entry.partition(" ")
                if not oid.isdigit() or not path:
                    raise ValueError(f"a line is not 'OID PATH': {entry[:200]!r}")
                found[int(oid)] = path
            line = []
            continue
        escaped = False
        line.append(ch)
    return found


def format_tablespace_map(paths: dict[int, str]) -> str:
    """The inverse of :func:`parse_tablespace_map`."""
    escape = str.maketrans({"\\": "\\\\", "\n": "\\\n", "\r": "\\\r"})
    return "".join(f"{oid} {path.translate(escape)}\n" for oid, path in sorted(paths.items()))
