"""One backup, start to commit: source → blobs → tree → index → snapshot.

The snapshot is written last and is the only commit; a crash at any earlier point leaves
the repository as it was plus unreferenced objects that ``forget --prune`` removes.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from backup.archiver import PathArchiver, ProgressFn, TreeStats, default_workers, store_stream
from backup.prune import condemned_packs
from backup.repository import Repository
from backup.snapindex import SnapshotIndex
from backup.snapshot import Snapshot, save_snapshot
from backup.sources import SourceSpec, StreamSource, command_stream, postgres_stream, sqlite_stream
from backup.tree import TreeWriter
from backup.writer import BlobWriter, WriteStats
from dc.errors import N_, UsageError
from dc.failpoint import failpoint
from dc.osuser import os_user
from dc.plaintext import hidden

#: System names starting with this are bcpctl's own snapshots (the control-state copies,
#: ``_control``): promotion trusts them, so a backup a user asks for never takes one.
RESERVED_PREFIX = "_"


def refuse_reserved(system: str | None) -> None:
    """A user's backup may not name a reserved system (hostile finding 13: a planted ``_control`` copy)."""
    if system is not None and system.startswith(RESERVED_PREFIX):
        raise UsageError(
            N_("system '{system}' is reserved: names starting with '{RESERVED_PREFIX}' are bcpctl's own snapshots"),
            system=system,
            RESERVED_PREFIX=RESERVED_PREFIX,
        )


def refuse_unplain_system(system: str | None) -> None:
    """A system name is printed in every listing, in console lines that read rich markup
    (``[/x]`` ends such a line in an error, ``[red]goka-juki`` shows another system's name) as
    well as in tables (which draw cells as written), and an escape sequence or bidi override
    acts on the terminal wherever it is printed: a name is plain text from the start."""
    if system is not None and any(hidden(c) or c in "[]" for c in system):
        raise UsageError(
            N_("system {system!r} holds a control character or a bracket; system names are plain text"),
            system=system,
        )


def refuse_control_tags(tags: Mapping[str, str]) -> None:
    """Tags are read by people in every listing: a control character (an escape sequence
    rewriting the operator's terminal, a newline faking a line), a bidi override or a
    zero-width character (a label reading otherwise than it is) is never a label."""
    for key, value in tags.items():
        if any(hidden(c) for c in key + value):
            raise UsageError(
                N_("tag {key!r}={value!r} holds a control character; tags are plain text"), key=key, value=value
            )


@dataclass(frozen=True)
class BackupRequest:
    source: SourceSpec
    system: str | None = None
    tenant: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()
    workers: int | None = None
    #: extra tags computed from what a stream source stored — ``(snapshot time, the file's
    #: SHA-256, row counts)`` — so they can vouch for it (the signature of a control-state copy)
    seal: Callable[[datetime, str, dict[str, int]], dict[str, str]] | None = None


@dataclass(frozen=True)
class BackupResult:
    snapshot_id: str
    time: datetime
    source: str
    system: str | None
    tenant: str | None
    parent: str | None
    files_new: int
    files_changed: int
    files_unmodified: int
    dirs: int
    bytes_total: int
    bytes_read: int
    #: bytes this backup added to storage (packs, compressed and encrypted)
    bytes_added: int
    blobs_added: int
    #: the same data before compression: what did not deduplicate
    raw_bytes_added: int
    seconds: float
    tables: dict[str, int]
    errors: list[str]
    #: changed files whose parent recorded a content type, and of those the ones whose known
    #: type became none (:mod:`backup.contenttype`): a ransomware signal
    files_typed: int = 0
    files_type_lost: int = 0


def _parent_for(index: SnapshotIndex, request: BackupRequest) -> Snapshot | None:
    """The newest snapshot of the same system and source, from the local snapshot index."""
    spec = request.source.display
    return index.newest(request.system or spec, spec)


def _open_stream(source: SourceSpec) -> AbstractContextManager[StreamSource]:
    if source.kind == "sqlite":
        return sqlite_stream(source.value)
    if source.kind == "postgres":
        return postgres_stream(source.value)
    if source.kind == "postgres-wal":
        from backup.basebackup import basebackup_stream

        return basebackup_stream(source.value)
    return command_stream(source.value)


def run_backup(repo: Repository, request: BackupRequest, *, progress: ProgressFn | None = None) -> BackupResult:
    refuse_unplain_system(request.system)
    refuse_control_tags(request.tags)
    started = time.monotonic()
    when = datetime.now(UTC)
    index = SnapshotIndex(repo)
    parent = _parent_for(index, request)
    # Never deduplicate against a pack that prune has condemned: it may be gone before we commit.
    condemned = condemned_packs(repo)
    repo.cache.exclude_packs(condemned)
    writer = BlobWriter(repo)
    tables: dict[str, int] = {}
    tags = dict(request.tags)
    if request.seal is not None and request.source.kind == "path":
        raise UsageError(N_("only a stream source (sqlite, postgres, command) can be sealed"))
    try:
        tree = TreeWriter(writer.add_tree, repo.master.chunker_seed)
        if request.source.kind == "path":
            archiver = PathArchiver(repo, writer, workers=request.workers, exclude=request.exclude, progress=progress)
            stats = archiver.run(Path(request.source.value), parent.tree if parent else None, tree, condemned)
        else:
            stats = TreeStats()
            with _open_stream(request.source) as source:
                with ThreadPoolExecutor(request.workers or default_workers()) as pool:
                    stored = [(source.name, *store_stream(repo, writer, source.stream, pool=pool, progress=progress))]
                    for name, path in source.more:
                        with path.open("rb", buffering=0) as more:
                            stored.append((name, *store_stream(repo, writer, more, pool=pool, progress=progress)))
                tables = source.tables
            tags.update(source.tags)
            for name, sha, ids, size in sorted(stored):  # a tree lists its entries in name order
                tree.add(
                    {
                        "path": name,
                        "type": "file",
                        "mode": 0o600,
                        "mtime": time.time_ns(),
                        "size": size,
                        "sha256": sha,
                        "chunks": ids,
                    }
                )
            size = sum(entry[3] for entry in stored)
            stats.files_new, stats.bytes_total, stats.bytes_read = len(stored), size, size
            if request.seal is not None:
                tags.update(request.seal(when, stored[0][1], tables))
        tree_ids = tree.finish()
        writer.flush()
    finally:
        writer.close()
    added = writer.stats
    if request.source.kind == "path":  # forked readers wrote packs of their own
        added = WriteStats(**{k: v + getattr(archiver.worker_stats, k) for k, v in vars(writer.stats).items()})
    failpoint("backup.after-index")
    snapshot = save_snapshot(
        repo,
        Snapshot(
            time=when,
            hostname=socket.gethostname(),
            username=_user(),
            source_kind=request.source.kind,
            source_spec=request.source.display.partition(":")[2],
            tree=tree_ids,
            system=request.system,
            tenant=request.tenant,
            tags=tags,
            parent=parent.id if parent else None,
            summary={
                "files_new": stats.files_new,
                "files_changed": stats.files_changed,
                "files_unmodified": stats.files_unmodified,
                "dirs": stats.dirs,
                "bytes_total": stats.bytes_total,
                "bytes_read": stats.bytes_read,
                "files_typed": stats.files_typed,
                "files_type_lost": stats.files_type_lost,
                "bytes_added": added.stored_bytes_added,
                "blobs_added": added.blobs_added,
                "seconds": round(time.monotonic() - started, 3),
                "errors": stats.errors,
            },
            verify={"tables": tables} if tables else {},
        ),
    )
    index.add(snapshot)
    failpoint("backup.after-snapshot")  # committed, not yet signed (the repository signs on close)
    return BackupResult(
        snapshot_id=snapshot.id,
        time=when,
        source=request.source.display,
        system=request.system,
        tenant=request.tenant,
        parent=snapshot.parent,
        files_new=stats.files_new,
        files_changed=stats.files_changed,
        files_unmodified=stats.files_unmodified,
        dirs=stats.dirs,
        bytes_total=stats.bytes_total,
        bytes_read=stats.bytes_read,
        bytes_added=added.stored_bytes_added,
        blobs_added=added.blobs_added,
        raw_bytes_added=added.raw_bytes_added,
        seconds=round(time.monotonic() - started, 3),
        tables=tables,
        errors=stats.errors,
        files_typed=stats.files_typed,
        files_type_lost=stats.files_type_lost,
    )


def _user() -> str:
    return os_user()
