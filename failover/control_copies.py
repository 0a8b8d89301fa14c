"""One shipped copy of a SQLite control database: restored, proved, and put in place without loss.

A copy is a repository snapshot holding one database file. Before it may become a site's live
control state it is restored into a private directory and proved — the SHA-256 recorded at
backup time, ``PRAGMA integrity_check``, the recorded row counts — and only then renamed into
place. Whatever database was at that place is moved aside with its WAL and shared-memory files,
never deleted.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from backup.errors import CorruptObject, VerificationFailed
from backup.repository import Repository
from backup.snapshot import Snapshot
from dc.errors import N_, BcpError, library_reason
from failover.controlplane import CONTROL_SYSTEM


def restore_verified(repo: Repository, snap: Snapshot, folder: Path) -> Path:
    """Restore one control-state copy into ``folder`` and prove it: the database file it holds."""
    from backup.restorer import restore_snapshot

    folder.mkdir(mode=0o700)
    restore_snapshot(repo, snap, folder)
    entry = database_entry(repo, snap)
    database = folder / str(entry["path"])
    check_database(database, str(entry.get("sha256") or ""), snap.verify.get("tables", {}))
    return database


def database_entry(repo: Repository, snap: Snapshot) -> dict[str, Any]:
    """The one database file a control-state copy holds (its tree entry, with the recorded SHA-256)."""
    from backup.tree import iter_tree

    files = [e for e in iter_tree(repo.read_blob, snap.tree) if e["type"] == "file"]
    if len(files) != 1:
        raise CorruptObject(
            N_("control-state copy {short_id} should hold one database file, holds {n_files}"),
            short_id=snap.short_id,
            n_files=len(files),
        )
    return dict(files[0])


def check_database(path: Path, sha256: str, tables: dict[str, int]) -> None:
    """The file has the recorded SHA-256, passes ``PRAGMA integrity_check`` and has the recorded row counts."""
    from backup.dbrestore import compare_tables
    from backup.sources import sqlite_row_counts

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != sha256:
        raise VerificationFailed(
            N_("restored control database has SHA-256 {digest}…, the copy recorded {sha256}…"),
            digest=digest.hexdigest()[:16],
            sha256=sha256[:16],
        )
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        found = conn.execute("PRAGMA integrity_check").fetchall()
        counts = sqlite_row_counts(conn)
    except sqlite3.DatabaseError as exc:
        raise VerificationFailed(
            N_("restored control database does not open as SQLite: {exc}"), exc=library_reason(exc)
        ) from None
    finally:
        conn.close()
    if found != [("ok",)]:
        raise VerificationFailed(
            N_("restored control database fails integrity_check: {found}"), found=found[0][0] if found else "?"
        )
    mismatches = compare_tables(tables, counts)
    if mismatches:
        table, (want, got) = next(iter(mismatches.items()))
        raise VerificationFailed(
            N_("restored control database: table {table} has {got} rows, the copy recorded {want}"),
            table=table,
            got=got,
            want=want,
        )


def manifest_times(repo: Repository) -> dict[str, datetime]:
    """Control-state copies the signed manifest lists, with their times (also for unreadable ones)."""
    from backup.manifest import read_manifest, repository_public_key

    try:
        manifest = read_manifest(repo.backend, public_key=repository_public_key(repo), repo_id=repo.config.id)
    except BcpError:
        return {}
    if manifest is None:
        return {}
    return {e.id: datetime.fromisoformat(e.time) for e in manifest.snapshots if e.system == CONTROL_SYSTEM}


def move_aside(path: Path, label: str) -> str:
    """Move the database at ``path`` (with its WAL and shared-memory files) out of the way, never deleting it."""
    aside = path.with_name(f"{path.name}.{label}")
    for suffix in ("", "-wal", "-shm", "-journal"):
        found = Path(f"{path}{suffix}")
        if found.exists():
            os.replace(found, Path(f"{aside}{suffix}"))
    _fsync_dir(path.parent)
    return str(aside)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def put_in_place(restored: Path, path: Path) -> None:
    """Rename a proved copy to ``path`` (same directory: atomic) and make the rename durable."""
    os.replace(restored, path)
    _fsync_dir(path.parent)
