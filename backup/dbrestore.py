"""Restoring database snapshots and proving the rows came back.

A PostgreSQL snapshot streams into ``pg_restore --single-transaction`` (a failure leaves the
target as it was); the stream's SHA-256 and every table's row count are then compared with
what the backup recorded in the same transaction snapshot as the dump. A SQLite snapshot is
restored as a file and its tables counted the same way.
"""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from backup.errors import CorruptObject, RepositoryError, VerificationFailed
from backup.repository import Repository
from backup.snapshot import Snapshot
from backup.sources import piped, postgres_row_counts, postgres_tool, redact_dsn, sqlite_row_counts
from backup.tree import iter_tree
from dc.errors import N_, library_reason


@dataclass
class DatabaseRestoreResult:
    snapshot_id: str
    target: str
    bytes: int = 0
    tables: dict[str, int] = field(default_factory=dict)
    table_mismatches: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    seconds: float = 0.0


def compare_tables(expected: dict[str, int], actual: dict[str, int]) -> dict[str, tuple[int, int | None]]:
    """``{table: (expected, actual)}`` for every table whose count differs or is missing."""
    return {name: (count, actual.get(name)) for name, count in expected.items() if actual.get(name) != count}


def verify_sqlite(snapshot: Snapshot, path: Path) -> dict[str, tuple[int, int | None]]:
    expected = snapshot.verify.get("tables", {})
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        actual = sqlite_row_counts(conn)
    except sqlite3.DatabaseError as exc:
        raise VerificationFailed(
            N_("restored database {path} does not open: {exc}"), path=path, exc=library_reason(exc)
        ) from None
    finally:
        conn.close()
    return compare_tables(expected, actual)


def restore_postgres(
    repo: Repository,
    snapshot: Snapshot,
    dsn: str,
    *,
    progress: Callable[[int], None] | None = None,
) -> DatabaseRestoreResult:
    if snapshot.source_kind != "postgres":
        raise RepositoryError(
            N_("snapshot {short_id} is a {source_kind} backup, not PostgreSQL"),
            short_id=snapshot.short_id,
            source_kind=snapshot.source_kind,
        )
    entries = [e for e in iter_tree(repo.read_blob, snapshot.tree) if e["type"] == "file"]
    if len(entries) != 1:
        raise CorruptObject(
            N_("snapshot {short_id} should hold one dump stream, holds {n_entries}"),
            short_id=snapshot.short_id,
            n_entries=len(entries),
        )
    entry = entries[0]
    started = time.monotonic()
    result = DatabaseRestoreResult(snapshot.id, redact_dsn(dsn))
    proc = subprocess.Popen(
        [
            postgres_tool("pg_restore"),
            "--single-transaction",
            "--exit-on-error",
            "--no-owner",
            "--no-privileges",
            "-d",
            dsn,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    errors: list[str] = []
    stdin, stderr = piped(proc.stdin), piped(proc.stderr)
    reader = threading.Thread(
        target=lambda: errors.extend(stderr.read().decode(errors="replace").splitlines()), daemon=True
    )
    reader.start()
    digest = hashlib.sha256()
    try:
        for chunk_hex in entry.get("chunks", ()):
            data = repo.read_blob(bytes.fromhex(chunk_hex))
            digest.update(data)
            stdin.write(data)
            result.bytes += len(data)
            if progress:
                progress(len(data))
        stdin.close()
    except BrokenPipeError:
        pass  # pg_restore stopped early; its exit status and stderr say why
    except BaseException:
        proc.kill()
        raise
    finally:
        code = proc.wait()
        reader.join(timeout=5)
    if code != 0:
        detail = next((line for line in errors if "error" in line.lower()), errors[-1] if errors else "no output")
        raise RepositoryError(
            N_("pg_restore into {dsn} failed (nothing committed): {detail}"), dsn=redact_dsn(dsn), detail=detail
        )
    if digest.hexdigest() != entry.get("sha256") or result.bytes != entry.get("size"):
        raise VerificationFailed(
            N_("dump stream of snapshot {short_id} differs from the backup record"), short_id=snapshot.short_id
        )
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cur:
        result.tables = postgres_row_counts(cur)
    result.table_mismatches = compare_tables(snapshot.verify.get("tables", {}), result.tables)
    result.seconds = round(time.monotonic() - started, 3)
    if result.table_mismatches:
        name, (want, got) = next(iter(result.table_mismatches.items()))
        raise VerificationFailed(
            N_("restored table {name} has {got} rows, the backup recorded {want}"), name=name, got=got, want=want
        )
    return result
