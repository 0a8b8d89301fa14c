"""Restoring a snapshot into a directory, verified against what backup recorded.

Restore never writes outside its target. Before writing anything it reads the whole tree and
refuses a snapshot holding absolute paths, ``..`` components, duplicate or unsorted entries,
or symlinks whose target leaves the restored tree. While writing, every parent directory is
checked to be a real directory (never a symlink) and files are opened with ``O_NOFOLLOW``,
so even a pre-existing link planted in the target cannot redirect a write.

Every file's bytes are hashed as they are written and compared with the SHA-256 recorded at
backup time; every blob is authenticated and checked against its keyed id on the way.
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
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from backup.errors import HostileSnapshot, VerificationFailed
from backup.repository import Repository
from backup.snapshot import Snapshot
from backup.tree import Entry, iter_tree, path_key

ProgressFn = Callable[[int], None]


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


def validate_tree(repo: Repository, snapshot: Snapshot) -> tuple[int, int]:
    """One pass over the tree before any write; returns ``(files, bytes)``."""
    previous: tuple[str, ...] | None = None
    files = size = 0
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
            files += 1
            size += int(entry.get("size", 0))
    return files, size


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


def restore_snapshot(
    repo: Repository,
    snapshot: Snapshot,
    target: Path,
    *,
    workers: int | None = None,
    progress: ProgressFn | None = None,
) -> RestoreResult:
    started = time.monotonic()
    validate_tree(repo, snapshot)
    dest = _Target(target)
    result = RestoreResult(snapshot.id, str(dest.root))
    lock = threading.Lock()
    dirs: list[Entry] = []
    links: list[Entry] = []

    as_root = os.geteuid() == 0

    def write_file(entry: Entry) -> None:
        digest = hashlib.sha256()
        written = 0
        fd = dest.open_file(entry["path"])
        try:
            for chunk_hex in entry.get("chunks", ()):
                data = repo.read_blob(bytes.fromhex(chunk_hex))
                digest.update(data)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                written += len(data)
                if progress:
                    progress(len(data))
            _apply_metadata(fd, entry, as_root=as_root)
        finally:
            os.close(fd)
        with lock:
            result.files += 1
            result.bytes += written
            if written != entry.get("size") or digest.hexdigest() != entry.get("sha256"):
                result.mismatches.append(entry["path"])
            else:
                result.verified_files += 1

    futures: deque[Future[None]] = deque()
    # One writer per core: more threads only trade GIL hand-offs (a futex round trip each) for nothing.
    with ThreadPoolExecutor(workers or os.cpu_count() or 2, thread_name_prefix="bcp-restore") as pool:
        for entry in iter_tree(repo.read_blob, snapshot.tree):
            kind = entry["type"]
            if kind == "dir":
                dest.mkdir(entry["path"])
                dirs.append(entry)
                result.dirs += 1
            elif kind == "symlink":
                links.append(entry)
            else:
                futures.append(pool.submit(write_file, entry))
                while futures and (futures[0].done() or len(futures) > 256):
                    futures.popleft().result()
        while futures:
            futures.popleft().result()
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
