"""A ``postgres-wal`` system's base backup: ``pg_basebackup`` in tar format, streamed into the chunker.

The tar stream goes straight from ``pg_basebackup`` to the repository, never to a local disk.
WAL is not included (``-X none``): the system archives it itself through ``bcpctl wal push``,
and ``pg_basebackup`` returns only once PostgreSQL reports every segment the backup needs
archived. The backup's first tar member is ``backup_label``; its start position and timeline,
the segment size and the position after the backup are recorded as snapshot tags, which is
what point-in-time restore picks a base by and retention keeps WAL for.
"""

from __future__ import annotations

import subprocess
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from io import BytesIO
from typing import Any

from backup.errors import SourceError
from backup.sources import StreamSource, _drain_stderr, _one_row, pipe_reader, postgres_tool, redact_dsn
from backup.walseq import format_lsn, parse_lsn
from dc.errors import N_, library_reason

#: the stream's name in the snapshot tree
BASE_NAME = "base.tar"
#: snapshot tags of a base backup
TAG_START = "wal_start_lsn"
TAG_STOP = "wal_stop_lsn"
TAG_TIMELINE = "wal_timeline"
TAG_SEGMENT_SIZE = "wal_segment_size"
TAG_END = "backup_end"
#: how much of the stream's start is kept to read ``backup_label`` from (its first member)
_HEAD_BYTES = 64 * 1024


class _HeadKeeping:
    """A stream that keeps a copy of its first bytes."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.head = bytearray()

    def readinto(self, buffer: Any) -> int:
        n = self._stream.readinto(buffer)
        if n and len(self.head) < _HEAD_BYTES:
            self.head += memoryview(buffer)[: min(n, _HEAD_BYTES - len(self.head))]
        return int(n or 0)

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        if data and len(self.head) < _HEAD_BYTES:
            self.head += data[: _HEAD_BYTES - len(self.head)]
        return bytes(data)


def backup_label(head: bytes) -> dict[str, str]:
    """The fields of ``backup_label``, the first member of ``pg_basebackup``'s tar stream."""
    try:
        with tarfile.open(fileobj=BytesIO(head), mode="r|") as tar:
            member = tar.next()
            if member is None or member.name != "backup_label":
                raise SourceError(N_("pg_basebackup's tar stream does not begin with backup_label"))
            text = tar.extractfile(member).read().decode()  # type: ignore[union-attr]
    except (tarfile.TarError, OSError, UnicodeDecodeError) as exc:
        raise SourceError(N_("cannot read backup_label from pg_basebackup's stream: {exc}"), exc=exc) from None
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            fields[key] = value
    return fields


@contextmanager
def basebackup_stream(dsn: str) -> Iterator[StreamSource]:
    import psycopg

    try:
        conn = psycopg.connect(dsn, autocommit=True, connect_timeout=15)
    except psycopg.OperationalError as exc:
        raise SourceError(N_("cannot connect to {dsn}: {exc}"), dsn=redact_dsn(dsn), exc=library_reason(exc)) from None
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'")
            segment_size = int(_one_row(cur)[0])
            cur.execute("SELECT current_setting('archive_mode'), pg_is_in_recovery()")
            archive_mode, in_recovery = _one_row(cur)
            # pg_basebackup streams one archive only; each tablespace would be another, and a
            # restore must not follow a tablespace's path to the primary's own files
            # (backup/waltablespace.py): a base backup without them would be incomplete.
            cur.execute(
                "SELECT spcname, pg_tablespace_location(oid) FROM pg_tablespace "
                "WHERE spcname NOT IN ('pg_default', 'pg_global') ORDER BY spcname"
            )
            spaces = cur.fetchall()
        if archive_mode == "off":
            raise SourceError(
                N_("{dsn} does not archive WAL (archive_mode = off): no base backup without it"), dsn=redact_dsn(dsn)
            )
        if spaces:
            name, location = spaces[0]
            raise SourceError(
                N_(
                    "{dsn} has {count} tablespace(s) ({name} at {location}): a base backup holds the data "
                    "directory alone, move their objects to pg_default first"
                ),
                dsn=redact_dsn(dsn),
                count=len(spaces),
                name=name,
                location=location,
            )
        proc = subprocess.Popen(
            [
                postgres_tool("pg_basebackup"),
                "-D",
                "-",
                "-Ft",
                "-X",
                "none",
                "--checkpoint=fast",
                "--no-sync",
                "-d",
                dsn,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        stderr_tail = _drain_stderr(proc)
        stdout = pipe_reader(proc)
        kept = _HeadKeeping(stdout)
        source = StreamSource(BASE_NAME, kept, {})
        try:
            yield source
        finally:
            stdout.close()
            code = proc.wait()
        if code != 0:
            raise SourceError(
                N_("pg_basebackup of {dsn} failed: {stderr_tail}"), dsn=redact_dsn(dsn), stderr_tail=stderr_tail()
            )
        label = backup_label(bytes(kept.head))
        start = label.get("START WAL LOCATION", "").split(" ")[0]
        with conn.cursor() as cur:
            # A bound at or after the backup's true end: the archive must hold WAL up to here.
            cur.execute("SELECT pg_last_wal_replay_lsn()" if in_recovery else "SELECT pg_current_wal_lsn()")
            stop = str(_one_row(cur)[0])
        source.tags.update(
            {
                TAG_START: format_lsn(parse_lsn(start)),
                TAG_STOP: format_lsn(parse_lsn(stop)),
                TAG_TIMELINE: str(int(label.get("START TIMELINE", "1"))),
                TAG_SEGMENT_SIZE: str(segment_size),
                TAG_END: datetime.now(UTC).isoformat(timespec="microseconds"),
            }
        )
    finally:
        conn.close()
