"""A ``postgres-wal`` system's base backup: ``pg_basebackup`` in tar format, streamed into the chunker.

Without tablespaces, the tar stream goes straight from ``pg_basebackup`` to the repository,
never to a local disk. ``pg_basebackup`` writes to standard output only for a cluster without
tablespaces (its documentation, ``-D -``): a cluster with some is backed up with ``-Ft`` into
a private scratch directory (backup/pitrscratch.py: swept when the process is killed), one tar
per tablespace beside ``base.tar``, and each tar is then stored as its own file of the snapshot
(backup/baserecord.py) and the scratch removed; it needs free space the size of the database
under ``$TMPDIR``. WAL is not included (``-X none``): the system archives it itself through ``bcpctl wal push``,
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

from backup.baserecord import (
    BASE_NAME,
    TAG_END,
    TAG_SEGMENT_SIZE,
    TAG_START,
    TAG_STOP,
    TAG_TABLESPACES,
    TAG_TIMELINE,
    Tablespace,
    encode_tablespaces,
    parse_tablespace_map,
    tablespace_file,
)
from backup.errors import SourceError
from backup.pitrscratch import pitr_scratch, sweep_scratch
from backup.sources import StreamSource, _drain_stderr, _one_row, pipe_reader, postgres_tool, redact_dsn
from backup.walseq import format_lsn, parse_lsn
from dc.errors import N_, library_reason
from dc.failpoint import failpoint

__all__ = ["BASE_NAME", "TAG_END", "TAG_SEGMENT_SIZE", "TAG_START", "TAG_STOP", "TAG_TIMELINE", "basebackup_stream"]
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
    return _head(head)[0]


def _head(head: bytes) -> tuple[dict[str, str], str]:
    """``backup_label``'s fields and ``tablespace_map``'s text (empty without one): the first
    members of ``base.tar``, both sent before any file of the data directory."""
    mapping = ""
    try:
        with tarfile.open(fileobj=BytesIO(head), mode="r|") as tar:
            member = tar.next()
            if member is None or member.name != "backup_label":
                raise SourceError(N_("pg_basebackup's tar stream does not begin with backup_label"))
            text = tar.extractfile(member).read().decode()  # type: ignore[union-attr]
            member = tar.next()
            if member is not None and member.name == "tablespace_map":
                mapping = tar.extractfile(member).read().decode()  # type: ignore[union-attr]
    except (tarfile.TarError, OSError, UnicodeDecodeError) as exc:
        raise SourceError(N_("cannot read backup_label from pg_basebackup's stream: {exc}"), exc=exc) from None
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            fields[key] = value
    return fields, mapping


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
            cur.execute("SELECT count(*) FROM pg_tablespace WHERE spcname NOT IN ('pg_default', 'pg_global')")
            spaces = int(_one_row(cur)[0])
        if archive_mode == "off":
            raise SourceError(
                N_("{dsn} does not archive WAL (archive_mode = off): no base backup without it"), dsn=redact_dsn(dsn)
            )
        info = _BackupInfo(conn, segment_size, in_recovery)
        with _spooled(dsn, info) if spaces else _streamed(dsn, info) as source:
            yield source
    finally:
        conn.close()


class _BackupInfo:
    """What the tags need besides ``backup_label``: asked of the server the backup ran on."""

    def __init__(self, conn: Any, segment_size: int, in_recovery: bool) -> None:
        self.conn, self.segment_size, self.in_recovery = conn, segment_size, in_recovery

    def tags(self, head: bytes) -> dict[str, str]:
        label = _head(head)[0]
        start = label.get("START WAL LOCATION", "").split(" ")[0]
        with self.conn.cursor() as cur:
            # A bound at or after the backup's true end: the archive must hold WAL up to here.
            cur.execute("SELECT pg_last_wal_replay_lsn()" if self.in_recovery else "SELECT pg_current_wal_lsn()")
            stop = str(_one_row(cur)[0])
        return {
            TAG_START: format_lsn(parse_lsn(start)),
            TAG_STOP: format_lsn(parse_lsn(stop)),
            TAG_TIMELINE: str(int(label.get("START TIMELINE", "1"))),
            TAG_SEGMENT_SIZE: str(self.segment_size),
            TAG_END: datetime.now(UTC).isoformat(timespec="microseconds"),
        }

    def names(self) -> dict[int, str]:
        with self.conn.cursor() as cur:
            cur.execute("SELECT oid, spcname FROM pg_tablespace")
            return {int(oid): str(name) for oid, name in cur.fetchall()}


@contextmanager
def _streamed(dsn: str, info: _BackupInfo) -> Iterator[StreamSource]:
    """A cluster without tablespaces: ``pg_basebackup``'s stdout into the repository."""
    proc = subprocess.Popen(
        [postgres_tool("pg_basebackup"), "-D", "-", *_OPTIONS, "-d", dsn],
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
    source.tags.update(info.tags(bytes(kept.head)))


@contextmanager
def _spooled(dsn: str, info: _BackupInfo) -> Iterator[StreamSource]:
    """A cluster with tablespaces: ``pg_basebackup -Ft`` into a scratch directory, each tar then
    stored from there; the tablespaces recorded as ``tablespace_map`` names them."""
    sweep_scratch()  # what backups and restores killed before this one left: plaintext copies
    with pitr_scratch() as scratch:
        scratch.chmod(0o700)  # a plaintext copy of the database, readable by bcpctl alone
        out = scratch / "base"
        done = subprocess.run(
            [postgres_tool("pg_basebackup"), "-D", str(out), *_OPTIONS, "--no-manifest", "-d", dsn],
            capture_output=True,
            stdin=subprocess.DEVNULL,
        )
        if done.returncode != 0:
            tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:]
            raise SourceError(
                N_("pg_basebackup of {dsn} failed: {stderr_tail}"), dsn=redact_dsn(dsn), stderr_tail=" ".join(tail)
            )
        failpoint("basebackup.spooled")
        with (out / BASE_NAME).open("rb") as base:
            head = base.read(_HEAD_BYTES)
        tags = info.tags(head)
        try:
            locations = parse_tablespace_map(_head(head)[1])
        except ValueError as exc:
            raise SourceError(
                N_("pg_basebackup of {dsn} wrote an unreadable tablespace_map: {exc}"), dsn=redact_dsn(dsn), exc=exc
            ) from None
        tars = {p.name for p in out.iterdir()} - {BASE_NAME}
        if tars != {f"{oid}.tar" for oid in locations}:
            raise SourceError(
                N_("pg_basebackup of {dsn} wrote {tars} for the tablespaces its tablespace_map names ({oids})"),
                dsn=redact_dsn(dsn),
                tars=", ".join(sorted(tars)) or "-",
                oids=", ".join(map(str, sorted(locations))) or "-",
            )
        names = info.names()
        spaces = [Tablespace(oid, names.get(oid, ""), path) for oid, path in sorted(locations.items())]
        if spaces:
            tags[TAG_TABLESPACES] = encode_tablespaces(spaces)
        more = tuple((tablespace_file(s.oid), out / f"{s.oid}.tar") for s in spaces)
        with (out / BASE_NAME).open("rb", buffering=0) as stream:
            yield StreamSource(BASE_NAME, stream, {}, tags, more=more)


#: WAL is archived by the system itself (``wal push``), never in the base backup
_OPTIONS = ("-Ft", "-X", "none", "--checkpoint=fast", "--no-sync")
