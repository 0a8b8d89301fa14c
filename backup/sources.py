"""Backup sources: a directory, a SQLite file, a PostgreSQL database, any command's stdout.

Database sources yield a consistent stream plus per-table row counts taken at the same
instant, so a restore can prove it brought back exactly what was backed up:

* SQLite: the online backup API copies the database page by page into a private file (a
  consistent snapshot even while the application writes); counts come from that copy.
* PostgreSQL: a ``REPEATABLE READ`` transaction exports its snapshot; ``pg_dump
  --snapshot`` dumps exactly that state (custom format, compression off so yesterday's
  chunks deduplicate), and the same transaction counts every table's rows.
"""

from __future__ import annotations

import glob
import io
import re
import shlex
import shutil
import sqlite3
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlparse, urlunparse

from backup.errors import SourceError
from dc.errors import N_, UsageError, library_reason, os_reason

if TYPE_CHECKING:
    from psycopg import Cursor

    from backup.chunker import ReadableStream

_End = TypeVar("_End")

KINDS = ("path", "sqlite", "postgres", "postgres-wal", "command")


@dataclass(frozen=True)
class SourceSpec:
    kind: str
    value: str

    @property
    def display(self) -> str:
        """The spec as recorded in snapshots: never with a password."""
        return f"{self.kind}:{redact_dsn(self.value) if self.kind in ('postgres', 'postgres-wal') else self.value}"


def parse_source(text: str) -> SourceSpec:
    kind, sep, value = text.partition(":")
    if not sep or kind not in KINDS or not value:
        raise UsageError(
            N_("invalid source '{text}': use path:DIR, sqlite:FILE, postgres:DSN, postgres-wal:DSN or command:CMD"),
            text=text,
        )
    if kind in ("path", "sqlite"):
        value = str(Path(value).expanduser().absolute())
    return SourceSpec(kind, value)


def redact_dsn(dsn: str) -> str:
    """Drop passwords from URL-style and key=value DSNs before they reach a record or a log."""
    if "://" in dsn:
        parsed = urlparse(dsn)
        if parsed.password is not None:
            netloc = parsed.netloc.rsplit("@", 1)
            user = (parsed.username or "") + "@"
            return urlunparse(parsed._replace(netloc=user + netloc[-1]))
        return dsn
    return re.sub(r"password\s*=\s*('[^']*'|\S+)", "password=***", dsn)


@dataclass
class StreamSource:
    """A stream to back up, what to call it in the tree, and what restore must verify."""

    name: str
    stream: ReadableStream
    tables: dict[str, int]
    #: snapshot tags only known once the stream has ended (a base backup's WAL positions)
    tags: dict[str, str] = field(default_factory=dict)
    #: files stored after the stream, each its own file of the snapshot: (name in the tree,
    #: path) — a base backup's tablespaces, which ``pg_basebackup`` writes as separate tars
    more: tuple[tuple[str, Path], ...] = ()


@contextmanager
def sqlite_stream(path: str) -> Iterator[StreamSource]:
    source = Path(path)
    if not source.is_file():
        raise SourceError(N_("SQLite database {path} not found"), path=path)
    with tempfile.TemporaryDirectory(prefix="bcpctl-sqlite-") as tmp:
        copy = Path(tmp) / source.name
        try:
            src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
            dst = sqlite3.connect(copy)
            with dst:
                src.backup(dst)
            src.close()
            tables = sqlite_row_counts(dst)
            dst.close()
        except sqlite3.Error as exc:
            raise SourceError(
                N_("cannot back up SQLite database {path}: {exc}"), path=path, exc=library_reason(exc)
            ) from None
        with open(copy, "rb", buffering=0) as stream:
            yield StreamSource(source.name, stream, tables)


def sqlite_row_counts(conn: sqlite3.Connection) -> dict[str, int]:
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]
    return {
        name: conn.execute(f'SELECT count(*) FROM "{name.replace(chr(34), chr(34) * 2)}"').fetchone()[0]
        for name in names
    }


def postgres_tool(name: str) -> str:
    """The newest ``pg_dump``/``pg_restore``: it must be at least the server's major version."""
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    if candidates:
        return candidates[-1]
    found = shutil.which(name)
    if not found:
        raise SourceError(N_("{name} not found (install the postgresql-client package)"), name=name)
    return found


PG_COUNT_TABLES = """
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%' AND NOT c.relispartition
ORDER BY 1, 2
"""


def postgres_row_counts(cursor: Cursor[tuple[Any, ...]]) -> dict[str, int]:
    from psycopg import sql

    cursor.execute(PG_COUNT_TABLES)
    counts = {}
    for schema, table in cursor.fetchall():
        cursor.execute(sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table)))
        counts[f"{schema}.{table}"] = _one_row(cursor)[0]
    return counts


def _one_row(cursor: Cursor[tuple[Any, ...]]) -> tuple[Any, ...]:
    """The row of a query that always returns exactly one (an aggregate, a function call)."""
    row = cursor.fetchone()
    if row is None:
        raise SourceError(N_("PostgreSQL returned no row for a query that always returns one"))
    return row


@contextmanager
def postgres_stream(dsn: str) -> Iterator[StreamSource]:
    import psycopg

    try:
        conn = psycopg.connect(dsn, autocommit=False, connect_timeout=15)
    except psycopg.OperationalError as exc:
        raise SourceError(N_("cannot connect to {dsn}: {exc}"), dsn=redact_dsn(dsn), exc=library_reason(exc)) from None
    try:
        with conn.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cur.execute("SELECT pg_export_snapshot(), current_database()")
            snapshot_name, database = _one_row(cur)
            tables = postgres_row_counts(cur)
        # -Z0: no compression, so unchanged rows produce unchanged bytes and deduplicate.
        proc = subprocess.Popen(
            [postgres_tool("pg_dump"), "--format=custom", "-Z0", f"--snapshot={snapshot_name}", "--no-sync", "-d", dsn],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        stderr_tail = _drain_stderr(proc)
        stdout = pipe_reader(proc)
        try:
            yield StreamSource(f"{database}.pgdump", stdout, tables)
        finally:
            stdout.close()
            code = proc.wait()
        if code != 0:
            raise SourceError(
                N_("pg_dump of {dsn} failed: {stderr_tail}"), dsn=redact_dsn(dsn), stderr_tail=stderr_tail()
            )
    finally:
        conn.close()


@contextmanager
def command_stream(command: str) -> Iterator[StreamSource]:
    argv = shlex.split(command)
    if not argv:
        raise UsageError(N_("empty command source"))
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as exc:
        raise SourceError(N_("cannot run {argv}: {strerror}"), argv=argv[0], strerror=os_reason(exc)) from None
    stderr_tail = _drain_stderr(proc)
    stdout = pipe_reader(proc)
    try:
        yield StreamSource("stdout", stdout, {})
    finally:
        stdout.close()
        code = proc.wait()
    if code != 0:
        raise SourceError(
            N_("command '{argv}' exited with {code}: {stderr_tail}"), argv=argv[0], code=code, stderr_tail=stderr_tail()
        )


def pipe_reader(proc: subprocess.Popen[bytes]) -> io.BufferedReader:
    """The process's stdout, started as ``subprocess.PIPE`` with the default buffering."""
    if not isinstance(proc.stdout, io.BufferedReader):
        raise TypeError("the process was started without a buffered stdout pipe")
    return proc.stdout


def piped(end: _End | None) -> _End:
    """A pipe end of a process started with ``subprocess.PIPE`` for it (Popen types it optional)."""
    if end is None:
        raise TypeError("the process was started without this pipe")
    return end


def _drain_stderr(proc: subprocess.Popen[bytes]) -> Callable[[], str]:
    """Read stderr in the background (a full pipe would stall the dump); return a tail getter."""
    lines: list[str] = []

    stderr = piped(proc.stderr)

    def pump() -> None:
        for raw in stderr:
            lines.append(raw.decode(errors="replace").rstrip())
            del lines[:-5]

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()

    def tail() -> str:
        thread.join(timeout=5)
        return " / ".join(line for line in lines if line) or "no error output"

    return tail
