"""WAL a restore must not replay: the creation of a tablespace, which lands at the primary's path.

PostgreSQL replays ``CREATE TABLESPACE … LOCATION '/path'`` at the absolute path the primary
used: it changes that directory's mode, makes its version directory there and links
``pg_tblspc/<oid>`` to it, and every later write into the tablespace follows the link. On a
host that also holds the primary (or another system at that path), the restore would write
into live files outside its target; no recovery setting remaps the path. So every segment a
restore hands to PostgreSQL is read first (``pg_waldump``, which decodes records with the same
reader replay uses) and one holding a tablespace creation is withheld: recovery ends before
it rather than follow the path (backup/pitr.py refuses the restore unless its target came
first). An in-place tablespace (empty location) stays inside the target
and is allowed.

A record can begin in one segment and end in the next, and PostgreSQL replays it only once it
has read both; a segment is therefore read together with the end of its predecessor, and a
creation found in either withholds it. Replay reads segments in order, so the predecessor was
itself read and allowed first.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from backup.repository import Repository
from backup.sources import postgres_tool
from backup.walarchive import WalFile, WalNotFound, fetch, write_new
from backup.walnames import is_segment
from backup.walseq import DEFAULT_SEGMENT_SIZE, format_lsn, parse_lsn, parse_segment, segment_name
from dc.errors import N_, BcpError, ProblemFound, os_reason

#: beside a withheld segment in the restore's spool: restore_command answers "not in the archive"
#: for it without asking, and the restore tells the operator why recovery ended there
REFUSED = ".refused"
#: a creation record is about 1 KiB at most (its path is at most MAXPGPATH): one that ends in a
#: segment began within this many bytes before it, and it is a whole page of any WAL block size
_EDGE = 64 * 1024
#: pg_waldump finds no record where it was told to start (the end of a switched segment)
_NO_RECORD = "could not find a valid record after"
_CREATE = re.compile(r"lsn: ([0-9A-F]+/[0-9A-F]+), .*desc: CREATE (\d+) \"(.*)\"$")


@dataclass(frozen=True)
class Creation:
    lsn: int
    oid: int
    location: str


class TablespaceOutside(ProblemFound):
    """The WAL a restore would replay creates a tablespace outside its target (exit 1)."""


def refusal(system: str, creation: Creation) -> TablespaceOutside:
    return TablespaceOutside(
        N_(
            "the WAL of {system} creates tablespace {oid} at {location} ({lsn}): replaying it would write "
            "outside the restore target, so recovery stops before it; recover to a moment before {lsn}"
        ),
        system=system,
        oid=creation.oid,
        location=creation.location,
        lsn=format_lsn(creation.lsn),
    )


def _waldump(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, errors="replace", stdin=subprocess.DEVNULL, timeout=600)


def previous_name(name: str, segment_size: int = DEFAULT_SEGMENT_SIZE) -> str | None:
    seg = parse_segment(name, segment_size)
    return segment_name(seg.timeline, seg.segno - 1, segment_size) if seg.segno > 0 else None


def creations(
    name: str, data: bytes, previous: bytes | None = None, *, since: int = 0, workdir: Path | None = None
) -> list[Creation]:
    """Tablespace creations at ``since`` or later in segment ``name`` (and in the end of
    ``previous``, its predecessor's bytes, when given), outside the target: any but an in-place
    one. The segment is written for ``pg_waldump`` into a private directory under ``workdir``."""
    try:
        with tempfile.TemporaryDirectory(prefix="bcpctl-walscan-", dir=workdir) as tmp:
            Path(tmp, name).write_bytes(data)
            return creations_in(Path(tmp), name, len(data), previous, since=since)
    except OSError as exc:
        raise _unreadable(name, exc) from None


def creations_in(
    directory: Path, name: str, segment_size: int, previous: bytes | None = None, *, since: int = 0
) -> list[Creation]:
    """:func:`creations` of segment ``name`` already written whole in ``directory``, a private
    directory holding no other segment (the stand-in for the end of ``previous`` is written
    beside it and removed again): a caller that puts the segment on disk anyway writes it once."""
    segment_size = segment_size or DEFAULT_SEGMENT_SIZE
    begins = parse_segment(name, segment_size).segno * segment_size
    before = previous_name(name, segment_size)
    argv = [postgres_tool("pg_waldump"), "--rmgr=Tablespace", "--path", str(directory)]
    done = None
    try:
        if previous is not None and before is not None and len(previous) == segment_size:
            # only the pages pg_waldump reads: the first (the segment size) and the last ones
            stand_in = directory / before
            try:
                with stand_in.open("wb") as out:
                    out.write(previous[:_EDGE])
                    out.seek(segment_size - _EDGE)
                    out.write(previous[-_EDGE:])
                # the end is given: pg_waldump would wait seconds for a next segment that is not there
                done = _waldump(
                    [*argv, "--start", format_lsn(begins - _EDGE), "--end", format_lsn(begins + segment_size)]
                )
            finally:
                stand_in.unlink(missing_ok=True)
        if done is None or _NO_RECORD in done.stderr:
            # no predecessor, or its end holds no WAL (a segment switch zero-fills the rest):
            # nothing runs on into this segment, which is read alone
            done = _waldump([*argv, name])
    except OSError as exc:
        raise _unreadable(name, exc) from None
    # pg_waldump exits non-zero at the end of the readable WAL (the next segment is absent),
    # which is where replay of these files would stop too: the records it printed are what counts
    found = []
    for line in done.stdout.splitlines():
        if (match := _CREATE.search(line)) is not None and match[3] != "":
            found.append(Creation(parse_lsn(match[1]), int(match[2]), match[3]))
    return [c for c in found if c.lsn >= since]


def _unreadable(name: str, exc: OSError) -> ProblemFound:
    # fail closed: a segment nobody could read is not handed to replay
    return ProblemFound(
        N_("cannot read WAL segment {name} for tablespace creations: {strerror}"),
        name=name,
        strerror=os_reason(exc),
    )


def withhold(spool: Path, name: str, creation: Creation) -> None:
    """Leave ``<name>.refused`` in the restore's spool: its restore_command then stops recovery."""
    record = {"lsn": format_lsn(creation.lsn), "oid": creation.oid, "location": creation.location}
    (spool / f"{name}{REFUSED}").write_text(json.dumps(record) + "\n", encoding="utf-8")


def withheld(spool: Path) -> Creation | None:
    """The first creation a restore withheld in ``spool``, if any (what to tell the operator)."""
    for marker in sorted(spool.glob(f"*{REFUSED}")):
        try:
            record = json.loads(marker.read_text(encoding="utf-8"))
            return Creation(parse_lsn(str(record["lsn"])), int(record["oid"]), str(record["location"])[:1024])
        except (OSError, ValueError, KeyError, TypeError, BcpError):
            continue
    return None


def guarded_get(repo: Repository, system: str, name: str, target: Path, *, since: int, spool: Path) -> WalFile:
    """``wal get`` for a restore: ``name`` into ``target`` unless it creates a tablespace at or
    after ``since``; then it is withheld in ``spool`` and refused."""
    found, data = fetch(repo, system, name)
    if is_segment(name):
        before = previous_name(name, len(data) or DEFAULT_SEGMENT_SIZE)
        try:
            previous = fetch(repo, system, before)[1] if before is not None else None
        except WalNotFound:
            previous = None
        if made := creations(name, data, previous, since=since, workdir=spool):
            withhold(spool, name, made[0])
            raise refusal(system, made[0])
    write_new(target, data)
    return found
