"""Restoring a snapshot into a directory, verified against what backup recorded.

Before anything is written, one pass over the tree refuses a snapshot whose *names* could
leave the target: absolute paths, ``.``/``..``/empty components, NUL, unsorted or repeated
entries, entries beneath a non-directory. Link *targets* are data: a symlink comes back
with its exact target bytes wherever it points, and nothing is ever followed or written
through (:mod:`backup.restoretarget` places every entry beneath the target's directory
descriptor, under a temporary name renamed into place).

Order: directories (so the writers find them), files (forked writer processes, threads for
remote storage), then links, FIFOs, device nodes and hard links, then directories' owners,
modes and times, deepest first. Each file's SHA-256 is taken as it is written and compared
with the backup's record before the file gets its name.

Damage stays local: a file whose blob is damaged or missing fails alone, and so does what
a damaged tree blob lists. Everything else is restored and verified; the failures are
named with the snapshot (:class:`VerificationFailed`, exit 1), and none leaves a partial
file behind, under its name or a temporary one.
"""

from __future__ import annotations

import os
import posixpath
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backup.blobreader import BlobReader
from backup.errors import CorruptObject, HostileSnapshot, VerificationFailed
from backup.forked import Claims, can_fork, run_forked
from backup.repository import Repository
from backup.restoretarget import NotPlaced, Overwrite, ReadFn, Target, open_root
from backup.snapshot import Snapshot
from backup.tree import Entry, decode_entry, path_key

ProgressFn = Callable[[int], None]

#: failures and skipped entries named in full; beyond this only counted
_LISTED = 1000
#: failures named in the error message
_SHOWN = 5


@dataclass
class RestoreResult:
    snapshot_id: str
    target: str
    #: files restored and verified, written or (``--overwrite if-changed``) already there
    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    hardlinks: int = 0
    #: FIFOs and device nodes
    specials: int = 0
    bytes: int = 0
    verified_files: int = 0
    #: files and links left as they were because they already matched (``if-changed``)
    unchanged: int = 0
    #: entries deliberately not recreated (sockets; device nodes without root), ``path: why``
    skipped: list[str] = field(default_factory=list)
    skipped_count: int = 0
    #: entries that could not be restored, ``path: why``
    failed: list[str] = field(default_factory=list)
    failed_count: int = 0
    seconds: float = 0.0

    def fail(self, path: str, reason: str) -> None:
        self.failed_count += 1
        if len(self.failed) < _LISTED:
            self.failed.append(f"{path!r}: {reason}")

    def skip(self, path: str, reason: str) -> None:
        self.skipped_count += 1
        if len(self.skipped) < _LISTED:
            self.skipped.append(f"{path!r}: {reason}")


def check_entry_path(path: str) -> None:
    """Refuse a path that could leave the target."""
    if not path or path.startswith("/") or "\0" in path:
        raise HostileSnapshot(f"snapshot holds an unsafe path {path!r}; nothing was restored")
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise HostileSnapshot(f"snapshot holds an unsafe path {path!r}; nothing was restored")


@dataclass
class TreeShape:
    """What the validating pass learns: counts, and the directories and other entries to create."""

    files: int = 0
    bytes: int = 0
    dirs: list[Entry] = field(default_factory=list)
    #: links, hard links, FIFOs, sockets and devices, in tree order
    others: list[Entry] = field(default_factory=list)
    #: files of a restore unit's size or more, largest first: restored first (:func:`_claimed_files`)
    big_files: list[Entry] = field(default_factory=list)
    #: files that hard links name: the writers say which of them they restored
    link_sources: set[str] = field(default_factory=set)
    #: tree blobs that could not be read: what they list is not restored
    bad_blobs: dict[str, str] = field(default_factory=dict)


def iter_entries(repo: Repository, snapshot: Snapshot, bad_blobs: Iterable[str] = ()) -> Iterator[Entry]:
    """The snapshot's entries, skipping the tree blobs named in ``bad_blobs``."""
    skip = set(bad_blobs)
    for blob_id in snapshot.tree:
        if blob_id not in skip:
            yield from _blob_entries(repo, blob_id)


def _blob_entries(repo: Repository, blob_id: str) -> list[Entry]:
    data = repo.read_blob(bytes.fromhex(blob_id))
    if data and not data.endswith(b"\n"):
        raise CorruptObject(f"tree blob {blob_id[:16]} is truncated")
    return [decode_entry(line, f"tree blob {blob_id[:16]}") for line in data.splitlines()]


def validate_tree(repo: Repository, snapshot: Snapshot) -> TreeShape:
    """One pass over the tree before any write (it also collects directories and links, so the
    tree is not parsed once more for them). A damaged tree blob is noted, not fatal."""
    previous: tuple[str, ...] | None = None
    shape = TreeShape()
    kinds: dict[str, str] = {}
    for blob_id in snapshot.tree:
        try:
            entries = _blob_entries(repo, blob_id)
        except CorruptObject as exc:
            shape.bad_blobs[blob_id] = exc.message
            continue
        for entry in entries:
            path = entry["path"]
            check_entry_path(path)
            key = path_key(path)
            if previous is not None and key <= previous:
                raise HostileSnapshot(f"snapshot tree is out of order or repeats {path!r}; nothing was restored")
            previous = key
            parent = posixpath.dirname(path)
            if parent and kinds.get(parent, "dir") != "dir":
                raise HostileSnapshot(f"snapshot places {path!r} under a non-directory; nothing was restored")
            kind = entry["type"]
            if kind != "file" and len(kinds) < 1_000_000:
                kinds[path] = kind
            if kind == "file":
                size = int(entry.get("size", 0))
                shape.files += 1
                shape.bytes += size
                if size >= _UNIT_BYTES:
                    shape.big_files.append(entry)
            elif kind == "dir":
                shape.dirs.append(entry)
            else:
                shape.others.append(entry)
                if kind == "hardlink":
                    shape.link_sources.add(entry["link"])
    shape.big_files.sort(key=lambda entry: -int(entry.get("size", 0)))  # stable: ties keep tree order
    return shape


#: a unit of work claimed by one restore process: consecutive files of one directory, this big at most
_UNIT_BYTES = 16 * 1024 * 1024


def _claimed_files(repo: Repository, snapshot: Snapshot, claims: Claims, shape: TreeShape) -> Iterator[Entry]:
    """The files of the units this process claims: ``shape.big_files`` (those of a unit's size
    or more) first, then the rest of the tree.

    Every process cuts the same files into the same units and claims the next unit whenever
    it is free; a claim is always ahead of where the process is, so one forward pass finds
    all of its files. A unit stays inside one directory: two processes creating files in the
    same directory serialise on its lock in the kernel, and spin while they wait. Largest
    first ends the processes' shares together.
    """
    unit, claim = -1, claims.take()

    def units(entries: Iterable[Entry], big_ones: bool) -> Iterator[Entry]:
        nonlocal unit, claim
        unit_dir, unit_bytes = None, 0
        for entry in entries:
            entry_size = int(entry.get("size", 0))
            if entry["type"] != "file" or (entry_size >= _UNIT_BYTES) != big_ones:
                continue
            parent = posixpath.dirname(entry["path"])
            if parent != unit_dir or unit_bytes + entry_size > _UNIT_BYTES:
                unit, unit_dir, unit_bytes = unit + 1, parent, 0
                if unit > claim:
                    claim = claims.take()
            unit_bytes += entry_size
            if unit == claim:
                yield entry

    yield from units(shape.big_files, True)
    yield from units(iter_entries(repo, snapshot, shape.bad_blobs), False)


class _Share:
    """What one writer (process or thread) did; crosses the process boundary as a dict."""

    def __init__(self, link_sources: set[str]) -> None:
        self.link_sources = link_sources
        self.files = self.bytes = self.unchanged = self.failed_count = 0
        self.failed: list[tuple[str, str]] = []
        self.linkable: list[str] = []

    def write(self, dest: Target, read: ReadFn, entry: Entry, progress: ProgressFn | None) -> None:
        path = entry["path"]
        try:
            written, fresh = dest.write_file(entry, read, progress)
        except (NotPlaced, OSError) as exc:
            self.failed_count += 1
            if len(self.failed) < _LISTED:
                self.failed.append((path, reason(exc)))
            return
        self.files += 1
        self.bytes += written
        self.unchanged += not fresh
        if path in self.link_sources:
            self.linkable.append(path)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k != "link_sources"}


def reason(exc: BaseException) -> str:
    """Why an entry failed, as one line."""
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return str(exc)


def _restore_share(
    repo: Repository, snapshot: Snapshot, dest: Target, claims: Claims, shape: TreeShape, progress: ProgressFn | None
) -> dict[str, Any]:
    """Restore the files this process claims (one process's share), each verified as written."""
    share = _Share(shape.link_sources)
    read = BlobReader(repo).read
    tally = _Tally(progress) if progress else None
    for entry in _claimed_files(repo, snapshot, claims, shape):
        share.write(dest, read, entry, tally)
    if tally is not None:
        tally.flush()
    dest.close()
    return share.as_dict()


class _Tally:
    """Progress passed on in steps of :data:`_TALLY_BYTES`: a forked writer's report takes a
    lock shared by every process, which cost ~0.2 s of CPU per process when taken per blob."""

    def __init__(self, report: ProgressFn) -> None:
        self._report = report
        self._pending = 0

    def __call__(self, amount: int) -> None:
        self._pending += amount
        if self._pending >= _TALLY_BYTES:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._report(self._pending)
            self._pending = 0


_TALLY_BYTES = 8 * 1024 * 1024


def _restore_threaded(
    repo: Repository, snapshot: Snapshot, dest: Target, shape: TreeShape, workers: int, progress: ProgressFn | None
) -> list[dict[str, Any]]:
    """Remote storage cannot fork (sockets, helper threads): writer threads, one target view each."""
    shares: list[tuple[_Share, Target]] = []
    mine = threading.local()

    def read(chunk_id: bytes) -> bytes:
        return repo.read_blob(chunk_id, check_id=False)

    def write(entry: Entry) -> None:
        if not hasattr(mine, "share"):
            mine.share, mine.dest = _Share(shape.link_sources), dest.view()
            shares.append((mine.share, mine.dest))  # list.append is atomic
        mine.share.write(mine.dest, read, entry, progress)

    futures: deque[Future[None]] = deque()
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="bcp-restore") as pool:
            for entry in iter_entries(repo, snapshot, shape.bad_blobs):
                if entry["type"] == "file":
                    futures.append(pool.submit(write, entry))
                    while futures and (futures[0].done() or len(futures) > 256):
                        futures.popleft().result()
            while futures:
                futures.popleft().result()
    finally:
        for _, view in shares:
            view.close()
    return [share.as_dict() for share, _ in shares]


def restore_snapshot(
    repo: Repository,
    snapshot: Snapshot,
    target: Path,
    *,
    overwrite: Overwrite = "never",
    workers: int | None = None,
    progress: ProgressFn | None = None,
) -> RestoreResult:
    """Restore ``snapshot`` into ``target`` under the overwrite policy (see :mod:`backup.restoretarget`).

    Raises :class:`VerificationFailed` naming what could not be restored, after restoring
    everything else; :class:`TargetNotEmpty` (nothing written) for a non-empty target under
    ``never``; :class:`HostileSnapshot` (nothing written) for unsafe names.
    """
    started = time.monotonic()
    shape = validate_tree(repo, snapshot)
    root_fd = open_root(target, overwrite)
    dest = Target(root_fd, overwrite, as_root=os.geteuid() == 0)
    result = RestoreResult(snapshot.id, os.path.realpath(target))
    for blob_id, problem in shape.bad_blobs.items():
        result.fail(f"<entries of tree blob {blob_id[:16]}>", problem)
    try:
        for entry in shape.dirs:
            try:
                dest.dir_fd(entry["path"])
                result.dirs += 1
            except (NotPlaced, OSError) as exc:
                result.fail(entry["path"], reason(exc))
        linkable: set[str] = set()
        for share in _restore_files(repo, snapshot, dest, shape, workers, progress):
            result.files += share["files"]
            result.bytes += share["bytes"]
            result.unchanged += share["unchanged"]
            result.failed_count += share["failed_count"] - len(share["failed"])
            for path, why in share["failed"]:
                result.fail(path, why)
            linkable.update(share["linkable"])
        _place_others(dest, shape, result, linkable)
        # Directory times last, deepest first, or writing their contents would reset them.
        for entry in reversed(shape.dirs):
            try:
                dest.finish_dir(entry)
            except (NotPlaced, OSError) as exc:
                result.fail(entry["path"], reason(exc))
    finally:
        dest.close()
        os.close(root_fd)
    result.verified_files = result.files
    result.seconds = round(time.monotonic() - started, 3)
    if result.failed_count:
        raise VerificationFailed(_failure_message(snapshot, result))
    return result


def _restore_files(
    repo: Repository,
    snapshot: Snapshot,
    dest: Target,
    shape: TreeShape,
    workers: int | None,
    progress: ProgressFn | None,
) -> list[dict[str, Any]]:
    count = workers or os.cpu_count() or 2
    if not can_fork(repo):
        return _restore_threaded(repo, snapshot, dest, shape, count, progress)
    claims = Claims()
    reported = 0

    def report(amount: int) -> None:
        # Workers cannot reach this process's bar: every process adds to the shared total,
        # and this one shows it whenever it writes.
        nonlocal reported
        total = claims.add_done(amount)
        if progress and total > reported:
            progress(total - reported)
            reported = total

    def share(r: Repository, i: int, n: int) -> dict[str, Any]:
        mine = report if i == 0 else claims.add_done
        return _restore_share(r, snapshot, dest, claims, shape, mine if progress else None)

    return run_forked(repo, count, share)


def _place_others(dest: Target, shape: TreeShape, result: RestoreResult, linkable: set[str]) -> None:
    """Links, hard links, FIFOs and devices, once every file they may name is in place
    (``linkable``: the files hard links name that were restored)."""
    for entry in shape.others:
        path, kind = entry["path"], entry["type"]
        try:
            if kind == "symlink":
                result.unchanged += not dest.place_symlink(entry)
                result.symlinks += 1
            elif kind == "hardlink":
                if entry["link"] not in linkable:
                    raise NotPlaced(f"hard link to {entry['link']!r}, which was not restored")
                dest.place_hardlink(entry)
                result.hardlinks += 1
            elif kind == "fifo":
                dest.place_node(entry, None)
                result.specials += 1
            elif kind == "socket":
                # a socket is made by the program that listens on it; restic does not recreate them either
                result.skip(path, "a socket, not recreated")
            elif not dest.as_root:
                result.skip(path, "a device node, made only when restoring as root")
            else:
                dest.place_node(entry, os.makedev(int(entry["major"]), int(entry["minor"])))
                result.specials += 1
        except PermissionError as exc:
            if kind in ("chardev", "blockdev"):  # root without CAP_MKNOD (a container)
                result.skip(path, f"a device node, not made: {exc.strerror}")
            else:
                result.fail(path, reason(exc))
        except (NotPlaced, OSError) as exc:
            result.fail(path, reason(exc))
        except (KeyError, TypeError, ValueError):
            result.fail(path, "the snapshot's entry is malformed")


def _failure_message(snapshot: Snapshot, result: RestoreResult) -> str:
    shown = "; ".join(result.failed[:_SHOWN])
    more = f"; and {result.failed_count - _SHOWN} more" if result.failed_count > _SHOWN else ""
    return (
        f"snapshot {snapshot.short_id}: {result.failed_count} entr{'y' if result.failed_count == 1 else 'ies'} "
        f"not restored: {shown}{more}; everything else is restored and verified"
    )
