"""Restoring a snapshot into a directory, verified against what backup recorded.

Restore never writes outside its target. Before writing anything it reads the whole tree and
refuses a snapshot holding absolute paths, ``..`` components, duplicate or unsorted entries,
or symlinks whose target leaves the restored tree. While writing, every parent directory is
checked to be a real directory (never a symlink) and files are opened with ``O_NOFOLLOW``,
so even a pre-existing link planted in the target cannot redirect a write.

Every file's SHA-256 is compared with the one recorded at backup time, hashed again from
what the kernel holds (or as written, see :func:`_restore_share`); every blob is
authenticated on the way.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backup.blobreader import BlobReader
from backup.errors import HostileSnapshot, VerificationFailed
from backup.filehasher import LANE_MAX_BYTES, lanes_available
from backup.forked import Claims, can_fork, run_forked
from backup.repository import Repository
from backup.restoreverify import FileSender, Verifier
from backup.snapshot import Snapshot
from backup.tree import Entry, iter_tree, path_key

ProgressFn = Callable[[int], None]
ReadFn = Callable[[bytes], "bytes | memoryview"]


@dataclass
class RestoreResult:
    snapshot_id: str
    target: str
    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    bytes: int = 0
    verified_files: int = 0
    mismatches: list[str] = field(default_factory=list)
    seconds: float = 0.0


def check_entry_path(path: str) -> None:
    """Refuse a path that could leave the target."""
    if not path or path.startswith("/") or "\0" in path:
        raise HostileSnapshot(f"snapshot holds an unsafe path {path!r}; nothing was restored")
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise HostileSnapshot(f"snapshot holds an unsafe path {path!r}; nothing was restored")


def check_link_target(path: str, target: str) -> None:
    """A symlink must resolve inside the restored tree, judged lexically from its own directory."""
    if not target or target.startswith("/") or "\0" in target:
        raise HostileSnapshot(f"symlink {path!r} points outside the restore target ({target!r}); nothing was restored")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    if resolved == ".." or resolved.startswith("../"):
        raise HostileSnapshot(f"symlink {path!r} points outside the restore target ({target!r}); nothing was restored")


@dataclass
class TreeShape:
    """What the validating pass learns: counts, and the directories and links to create."""

    files: int = 0
    bytes: int = 0
    dirs: list[Entry] = field(default_factory=list)
    links: list[Entry] = field(default_factory=list)
    #: files of a restore unit's size or more, largest first: restored first (:func:`_claimed_files`)
    big_files: list[Entry] = field(default_factory=list)


def validate_tree(repo: Repository, snapshot: Snapshot) -> TreeShape:
    """One pass over the tree before any write (it also collects directories and links, so the
    tree is not parsed once more for them)."""
    previous: tuple[str, ...] | None = None
    shape = TreeShape()
    kinds: dict[str, str] = {}
    for entry in iter_tree(repo.read_blob, snapshot.tree):
        path = entry["path"]
        check_entry_path(path)
        key = path_key(path)
        if previous is not None and key <= previous:
            raise HostileSnapshot(f"snapshot tree is out of order or repeats {path!r}; nothing was restored")
        previous = key
        parent = posixpath.dirname(path)
        if parent and kinds.get(parent, "dir") != "dir":
            raise HostileSnapshot(f"snapshot places {path!r} under a non-directory; nothing was restored")
        if entry["type"] == "symlink":
            check_link_target(path, str(entry.get("target", "")))
        if entry["type"] != "file" and len(kinds) < 1_000_000:
            kinds[path] = entry["type"]
        if entry["type"] == "file":
            size = int(entry.get("size", 0))
            shape.files += 1
            shape.bytes += size
            if size >= _UNIT_BYTES:
                shape.big_files.append(entry)
        elif entry["type"] == "dir":
            shape.dirs.append(entry)
        else:
            shape.links.append(entry)
    shape.big_files.sort(key=lambda entry: -int(entry.get("size", 0)))  # stable: ties keep tree order
    return shape


class _Target:
    """The restore root, with writes confined beneath it."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()
        self._checked_dirs: set[str] = {""}
        self._lock = threading.Lock()

    def _ensure_parent(self, rel: str) -> None:
        parent = posixpath.dirname(rel)
        with self._lock:
            if parent in self._checked_dirs:
                return
        # Walk down from the root, creating directories and refusing links on the way.
        current = ""
        for part in parent.split("/"):
            current = f"{current}/{part}" if current else part
            with self._lock:
                if current in self._checked_dirs:
                    continue
            full = self.root / current
            try:
                st = os.lstat(full)
            except FileNotFoundError:
                with contextlib.suppress(FileExistsError):  # another worker process made it
                    os.mkdir(full, 0o700)
                st = os.lstat(full)
            if not stat.S_ISDIR(st.st_mode):
                raise HostileSnapshot(
                    f"restore target holds a non-directory at {current!r}; refusing to write through it"
                )
            with self._lock:
                self._checked_dirs.add(current)

    def mkdir(self, rel: str) -> Path:
        self._ensure_parent(rel + "/x")
        return self.root / rel

    def open_file(self, rel: str) -> int:
        self._ensure_parent(rel)
        full = os.path.join(self.root, rel)
        return os.open(full, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)

    def symlink(self, rel: str, target: str) -> None:
        self._ensure_parent(rel)
        full = self.root / rel
        try:
            if stat.S_ISLNK(os.lstat(full).st_mode):
                os.unlink(full)
        except FileNotFoundError:
            pass
        os.symlink(target, full)


def _apply_metadata(path: str | int, entry: Entry, *, is_link: bool = False, as_root: bool) -> None:
    """Owner (as root), mode and mtime; ``path`` may be an open file descriptor (no path lookups)."""
    mtime = int(entry.get("mtime", 0))
    if as_root:
        # unknown ids on this host: keep root ownership rather than fail the restore
        with contextlib.suppress(OSError):
            uid, gid = int(entry.get("uid", -1)), int(entry.get("gid", -1))
            if isinstance(path, int):
                os.fchown(path, uid, gid)
            else:
                os.lchown(path, uid, gid)
    if not is_link:
        os.chmod(path, int(entry.get("mode", 0o600)) & 0o7777)
    if is_link:
        os.utime(path, ns=(mtime, mtime), follow_symlinks=False)
    else:
        os.utime(path, ns=(mtime, mtime))


def _write_file(
    read: ReadFn, dest: _Target, entry: Entry, as_root: bool, progress: ProgressFn | None, *, hash_now: bool = True
) -> tuple[int, bool]:
    """Write one file, verify it against its recorded SHA-256; return ``(bytes, verified)``.

    Without ``hash_now`` only the size is checked here; the caller verifies the file's
    SHA-256 afterwards from what was written (:func:`_restore_share`).
    """
    digest = hashlib.sha256() if hash_now else None
    written = 0
    fd = dest.open_file(entry["path"])
    try:
        for chunk_hex in entry.get("chunks", ()):
            # AES-GCM authenticates each blob; the file's SHA-256 checks the whole.
            data = read(bytes.fromhex(chunk_hex))
            size = len(data)
            if digest is not None:
                digest.update(data)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            written += size
            if progress:
                progress(size)
        _apply_metadata(fd, entry, as_root=as_root)
    finally:
        os.close(fd)
    same_size = written == entry.get("size")
    return written, same_size and (digest is None or digest.hexdigest() == entry.get("sha256"))


#: a unit of work claimed by one restore process: consecutive files of one directory, this big at most
_UNIT_BYTES = 16 * 1024 * 1024


def _claimed_files(repo: Repository, snapshot: Snapshot, claims: Claims, big_files: list[Entry]) -> Iterator[Entry]:
    """The files of the units this process claims: ``big_files`` (those of a unit's size or
    more, from :func:`validate_tree`) first, then the rest of the tree.

    Every process cuts the same files into the same units and claims the next unit whenever
    it is free; a claim is always ahead of where the process is, so one forward pass finds
    all of its files. A unit stays inside one directory: two processes creating files in the
    same directory serialise on its lock in the kernel, and spin while they wait.

    Big files go first, largest first, so their hashing (:mod:`backup.restoreverify`) starts
    early: a file moves through a lane at a sixteenth of the lanes' speed (~60 MB/s), so the
    verifier's last file is the one that decides when the restore ends. Largest first also
    ends the processes' shares together.
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

    yield from units(big_files, True)
    yield from units(iter_tree(repo.read_blob, snapshot.tree), False)


def _restore_share(
    repo: Repository,
    snapshot: Snapshot,
    dest: _Target,
    claims: Claims,
    big_files: list[Entry],
    progress: ProgressFn | None,
    sender: FileSender | None,
) -> dict[str, Any]:
    """Restore the files this process claims (one process's share) and verify every one.

    A file's SHA-256 is checked against what backup recorded: by the verifier process, from
    what the kernel holds once the file is written (:mod:`backup.restoreverify`), or, without
    one or for a file too big to wait in a lane, as its bytes are written.
    """
    as_root = os.geteuid() == 0
    files = size = verified = 0
    mismatches: list[str] = []
    read = BlobReader(repo).read
    tally = _Tally(progress) if progress else None
    for entry in _claimed_files(repo, snapshot, claims, big_files):
        later = sender is not None and int(entry.get("size", 0)) <= LANE_MAX_BYTES
        written, ok = _write_file(read, dest, entry, as_root, tally, hash_now=not later)
        files += 1
        size += written
        if later and ok:
            sender.add(entry)  # type: ignore[union-attr]
        elif ok:
            verified += 1
        else:
            mismatches.append(entry["path"])
    if sender is not None:
        sender.close()
    if tally is not None:
        tally.flush()
    return {"files": files, "bytes": size, "verified": verified, "mismatches": mismatches}


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
    repo: Repository, snapshot: Snapshot, dest: _Target, workers: int, progress: ProgressFn | None
) -> list[dict[str, Any]]:
    """Remote storage cannot fork (sockets, helper threads): writer threads instead."""
    lock = threading.Lock()
    as_root = os.geteuid() == 0
    total: dict[str, Any] = {"files": 0, "bytes": 0, "verified": 0, "mismatches": []}

    def read(chunk_id: bytes) -> bytes:
        return repo.read_blob(chunk_id, check_id=False)

    def write(entry: Entry) -> None:
        written, ok = _write_file(read, dest, entry, as_root, progress)
        with lock:
            total["files"] += 1
            total["bytes"] += written
            total["verified"] += ok
            if not ok:
                total["mismatches"].append(entry["path"])

    futures: deque[Future[None]] = deque()
    with ThreadPoolExecutor(workers, thread_name_prefix="bcp-restore") as pool:
        for entry in iter_tree(repo.read_blob, snapshot.tree):
            if entry["type"] == "file":
                futures.append(pool.submit(write, entry))
                while futures and (futures[0].done() or len(futures) > 256):
                    futures.popleft().result()
        while futures:
            futures.popleft().result()
    return [total]


def restore_snapshot(
    repo: Repository,
    snapshot: Snapshot,
    target: Path,
    *,
    workers: int | None = None,
    progress: ProgressFn | None = None,
) -> RestoreResult:
    started = time.monotonic()
    shape = validate_tree(repo, snapshot)
    dest = _Target(target)
    result = RestoreResult(snapshot.id, str(dest.root))
    as_root = os.geteuid() == 0
    dirs, links = shape.dirs, shape.links
    for entry in dirs:
        dest.mkdir(entry["path"])
    count = workers or os.cpu_count() or 2
    if can_fork(repo):
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

        verifier = Verifier(repo, dest.root, count) if lanes_available() else None

        def share(r: Repository, i: int, n: int) -> dict[str, Any]:
            mine = report if i == 0 else claims.add_done
            sender = verifier.sender(i) if verifier is not None else None
            return _restore_share(r, snapshot, dest, claims, shape.big_files, mine if progress else None, sender)

        try:
            shares = run_forked(repo, count, share)
            if verifier is not None:
                shares.append({"files": 0, "bytes": 0, **verifier.result()})
        finally:
            if verifier is not None:
                verifier.kill()
    else:
        shares = _restore_threaded(repo, snapshot, dest, count, progress)
    for share in shares:
        result.files += share["files"]
        result.bytes += share["bytes"]
        result.verified_files += share["verified"]
        result.mismatches += share["mismatches"]
    result.dirs = len(dirs)
    for entry in links:
        dest.symlink(entry["path"], entry["target"])
        _apply_metadata(os.path.join(dest.root, entry["path"]), entry, is_link=True, as_root=as_root)
        result.symlinks += 1
    # Directory times last, deepest first, or writing their contents would reset them.
    for entry in reversed(dirs):
        _apply_metadata(os.path.join(dest.root, entry["path"]), entry, as_root=as_root)
    result.seconds = round(time.monotonic() - started, 3)
    if result.mismatches:
        shown = ", ".join(result.mismatches[:5])
        raise VerificationFailed(f"{len(result.mismatches)} restored file(s) differ from the backup record: {shown}")
    return result
