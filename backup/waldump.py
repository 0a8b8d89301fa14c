"""The transactions a stretch of WAL committed, read with ``pg_waldump``.

Only ``pg_waldump`` knows every record format of the server's major version, so bcpctl reads
its text output rather than the WAL itself: per transaction its commit time and position, its
subtransactions (rows carry their ids as ``xmin``), the relations it wrote, and where its
deletes struck (relation, block, line pointer: a physically recovered copy of the cluster
holds the deleted row at exactly that ``ctid``). Its clock is pinned to UTC with ``TZ``.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from backup.sources import postgres_tool
from backup.walseq import format_lsn, parse_lsn

_RECORD = re.compile(r"rmgr: (\w+)\s+len .*?tx:\s+(\d+), lsn: ([0-9A-F]+/[0-9A-F]+), .*?desc: (.*)$")
_COMMIT = re.compile(r"^COMMIT (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) UTC")
_SUBXACTS = re.compile(r"subxacts: ([\d ]+)")
_BLOCK = re.compile(r"blkref #0: rel \d+/\d+/(\d+)(?: fork \w+)? blk (\d+)")
_OFFSET = re.compile(r"\boff:? (\d+)")


@dataclass
class Committed:
    xid: int
    lsn: int
    time: datetime
    subxids: tuple[int, ...] = ()
    #: relfilenodes the transaction wrote heap tuples into
    relations: set[int] = field(default_factory=set)


@dataclass
class WalStretch:
    committed: list[Committed] = field(default_factory=list)
    #: (relfilenode, block, line pointer) of each heap delete → the deleting transaction id
    deletes: dict[tuple[int, int, int], int] = field(default_factory=dict)
    #: what pg_waldump said when it stopped early (a damaged record), if it did
    stopped: str | None = None


def read_stretch(spool: Path, timeline: int, start: int, end: int) -> WalStretch:
    """Every commit with ``start <= lsn < end`` in the segments of ``spool``."""
    argv = [
        postgres_tool("pg_waldump"),
        "--path",
        str(spool),
        "--timeline",
        str(timeline),
        "--start",
        format_lsn(start),
        "--end",
        format_lsn(end),
    ]
    done = subprocess.run(
        argv, capture_output=True, text=True, errors="replace", env=os.environ | {"TZ": "UTC"}, timeout=600
    )
    stretch = parse_stretch(done.stdout.splitlines(), start, end)
    if done.returncode != 0:
        stretch.stopped = next(iter(done.stderr.strip().splitlines()[-1:]), f"exit status {done.returncode}")
    return stretch


def parse_stretch(lines: list[str], start: int, end: int) -> WalStretch:
    """The commits and deletes in ``pg_waldump`` output (pure)."""
    stretch = WalStretch()
    writes: dict[int, set[int]] = {}
    for line in lines:
        match = _RECORD.search(line)
        if match is None:
            continue
        rmgr, xid, lsn, desc = match[1], int(match[2]), parse_lsn(match[3]), match[4]
        if rmgr in ("Heap", "Heap2") and (block := _BLOCK.search(desc)):
            writes.setdefault(xid, set()).add(int(block[1]))
            if rmgr == "Heap" and desc.startswith("DELETE") and (off := _OFFSET.search(desc)):
                stretch.deletes[(int(block[1]), int(block[2]), int(off[1]))] = xid
        elif rmgr == "Transaction" and (commit := _COMMIT.match(desc)) and start <= lsn < end:
            subs = _SUBXACTS.search(desc)
            subxids = tuple(int(s) for s in subs[1].split()) if subs else ()
            when = datetime.fromisoformat(commit[1] + "+00:00")
            stretch.committed.append(Committed(xid, lsn, when, subxids))
    for tx in stretch.committed:
        for x in (tx.xid, *tx.subxids):
            tx.relations |= writes.get(x, set())
    return stretch
