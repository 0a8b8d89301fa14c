"""Backing up a directory tree or a stream into the repository.

A directory is walked in tree order beside its parent snapshot's entries (a merge join, so
memory does not grow with the tree). Files whose size, mtime, ctime and inode match the
parent are not read again — restic's rule — as long as their blobs are still indexed.
Changed files go to a worker pool, each file chunked, hashed, compressed and encrypted in
one thread (no hand-offs: on two cores those cost more than they bring when there are many
files); results are collected back in order so the tree stays sorted. A single stream (a
database dump) has no siblings to run beside, so it fans blob encoding out to a pool.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import stat
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from backup.chunker import chunks
from backup.errors import SourceError
from backup.repository import Repository
from backup.tree import Entry, TreeWriter, entry_from_stat, iter_tree, path_key, unchanged
from backup.writer import BlobWriter

ProgressFn = Callable[[int], None]

_MAX_PENDING_ENTRIES = 1024


def default_workers() -> int:
    return max(2, min(8, (os.cpu_count() or 2) + 1))


@dataclass
class TreeStats:
    files_new: int = 0
    files_changed: int = 0
    files_unmodified: int = 0
    dirs: int = 0
    symlinks: int = 0
    bytes_total: int = 0
    bytes_read: int = 0
    errors: list[str] = field(default_factory=list)

    def note_error(self, message: str) -> None:
        if len(self.errors) < 100:
            self.errors.append(message)


class _Encoder:
    """Stores chunks of one big stream through the pool, in bounded batches."""

    def __init__(self, writer: BlobWriter, pool: ThreadPoolExecutor | None) -> None:
        self._writer = writer
        self._pool = pool
        self._slots = threading.BoundedSemaphore(4)
        self._futures: deque[Future[bool]] = deque()

    def store(self, chunk_id: bytes, data: memoryview) -> None:
        if self._pool is None:
            self._writer.add(chunk_id, data)
            return
        self._slots.acquire()
        owned = bytes(data)  # the chunker reuses its buffer for the next chunk
        future = self._pool.submit(self._writer.add, chunk_id, owned)
        future.add_done_callback(lambda _f: self._slots.release())
        self._futures.append(future)
        while self._futures and self._futures[0].done():
            self._futures.popleft().result()

    def finish(self) -> None:
        while self._futures:
            self._futures.popleft().result()


def store_stream(
    repo: Repository,
    writer: BlobWriter,
    stream: BinaryIO,
    *,
    pool: ThreadPoolExecutor | None = None,
    progress: ProgressFn | None = None,
) -> tuple[str, list[str], int]:
    """Chunk, hash and store a stream; return ``(sha256 hex, chunk ids, size)``."""
    digest = hashlib.sha256()
    ids: list[str] = []
    size = 0
    encoder = _Encoder(writer, pool)
    params, seed = repo.config.chunker, repo.master.chunker_seed
    for data in chunks(stream, params, seed):
        digest.update(data)
        chunk_id = repo.master.chunk_id_of(data)
        encoder.store(chunk_id, data)
        ids.append(chunk_id.hex())
        size += len(data)
        if progress:
            progress(len(data))
    encoder.finish()
    return digest.hexdigest(), ids, size


def _store_small(repo: Repository, writer: BlobWriter, data: bytes) -> tuple[str, list[str]]:
    if not data:
        return hashlib.sha256().hexdigest(), []
    chunk_id = repo.master.chunk_id_of(data)
    writer.add(chunk_id, data)
    return hashlib.sha256(data).hexdigest(), [chunk_id.hex()]


class PathArchiver:
    """One backup of one directory tree."""

    def __init__(
        self,
        repo: Repository,
        writer: BlobWriter,
        *,
        workers: int | None = None,
        exclude: tuple[str, ...] = (),
        progress: ProgressFn | None = None,
    ) -> None:
        self.repo = repo
        self.writer = writer
        self.workers = workers or default_workers()
        self.exclude = exclude
        self.progress = progress
        self.stats = TreeStats()
        self._stats_lock = threading.Lock()
        self._small_limit = repo.config.chunker.min

    # -- walking ------------------------------------------------------------------------------

    def _excluded(self, rel: str, name: str) -> bool:
        return any(fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(name, pat) for pat in self.exclude)

    def _walk(self, root: Path) -> Iterator[tuple[str, str, os.stat_result]]:
        """``(relative path, full path, lstat)`` in tree order; unreadable dirs are noted and skipped."""
        try:
            root_stat = os.lstat(root)
        except OSError as exc:
            raise SourceError(f"cannot read backup source {root}: {exc.strerror}") from None
        if not stat.S_ISDIR(root_stat.st_mode):
            yield root.name, str(root), root_stat
            return
        # An explicit stack of per-directory listings: depth-first, siblings sorted, no recursion limit.
        stack = [iter(self._children("", str(root)))]
        while stack:
            item = next(stack[-1], None)
            if item is None:
                stack.pop()
                continue
            yield item
            rel, full, st = item
            if stat.S_ISDIR(st.st_mode):
                stack.append(iter(self._children(rel, full)))

    def _children(self, rel_dir: str, full_dir: str) -> list[tuple[str, str, os.stat_result]]:
        try:
            with os.scandir(full_dir) as it:
                listing = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            self.stats.note_error(f"{rel_dir or '.'}: {exc.strerror}")
            return []
        children = []
        for child in listing:
            rel = f"{rel_dir}/{child.name}" if rel_dir else child.name
            if self._excluded(rel, child.name):
                continue
            try:
                st = child.stat(follow_symlinks=False)
            except OSError as exc:
                self.stats.note_error(f"{rel}: {exc.strerror}")
                continue
            if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode):
                # sockets, fifos and devices are skipped: nothing a restore could bring back usefully
                children.append((rel, child.path, st))
        return children

    # -- reading ------------------------------------------------------------------------------

    def _read_file(self, full: str, entry: Entry) -> Entry | None:
        try:
            with open(full, "rb", buffering=0) as f:
                if entry["size"] < self._small_limit:
                    data = f.read()
                    sha, ids = _store_small(self.repo, self.writer, data)
                    size = len(data)
                    if self.progress:
                        self.progress(size)
                else:
                    sha, ids, size = store_stream(self.repo, self.writer, f, progress=self.progress)  # type: ignore[arg-type]
        except OSError as exc:
            with self._stats_lock:
                self.stats.note_error(f"{entry['path']}: {exc.strerror}")
            return None
        entry["sha256"] = sha
        entry["chunks"] = ids
        if size != entry["size"]:
            with self._stats_lock:
                self.stats.note_error(f"{entry['path']}: changed size while being read ({entry['size']} -> {size})")
            entry["size"] = size
        with self._stats_lock:
            self.stats.bytes_read += size
        return entry

    def _parent_entries(self, parent_tree: tuple[str, ...] | None) -> Iterator[Entry]:
        if parent_tree:
            yield from iter_tree(self.repo.read_blob, parent_tree)

    def _still_stored(self, entry: Entry) -> bool:
        return all(self.repo.cache.has(bytes.fromhex(c)) for c in entry.get("chunks", ()))

    def run(self, root: Path, parent_tree: tuple[str, ...] | None, tree: TreeWriter) -> TreeStats:
        parents = self._parent_entries(parent_tree)
        parent = next(parents, None)
        pending: deque[Entry | Future[Entry | None]] = deque()
        with ThreadPoolExecutor(self.workers, thread_name_prefix="bcp-read") as pool:
            readers = threading.BoundedSemaphore(self.workers)

            def drain(block: bool) -> None:
                while pending:
                    head = pending[0]
                    if isinstance(head, Future):
                        if not head.done() and not block and len(pending) < _MAX_PENDING_ENTRIES:
                            return
                        result = head.result()
                    else:
                        result = head
                    pending.popleft()
                    if result is not None:
                        tree.add(result)

            def read_task(full: str, entry: Entry) -> Entry | None:
                try:
                    return self._read_file(full, entry)
                finally:
                    readers.release()

            for rel, full, st in self._walk(root):
                entry = entry_from_stat(rel, st)
                key = path_key(rel)
                while parent is not None and path_key(parent["path"]) < key:
                    parent = next(parents, None)
                old = parent if parent is not None and parent["path"] == rel else None
                kind = entry["type"]
                if kind == "dir":
                    self.stats.dirs += 1
                    pending.append(entry)
                elif kind == "symlink":
                    try:
                        entry["target"] = os.readlink(full)
                    except OSError as exc:
                        self.stats.note_error(f"{rel}: {exc.strerror}")
                        continue
                    self.stats.symlinks += 1
                    pending.append(entry)
                else:
                    self.stats.bytes_total += entry["size"]
                    if unchanged(old, entry) and self._still_stored(old):  # type: ignore[arg-type]
                        entry["sha256"] = old["sha256"]  # type: ignore[index]
                        entry["chunks"] = old["chunks"]  # type: ignore[index]
                        self.stats.files_unmodified += 1
                        pending.append(entry)
                        if self.progress:
                            self.progress(entry["size"])
                    else:
                        if old is None:
                            self.stats.files_new += 1
                        else:
                            self.stats.files_changed += 1
                        while not readers.acquire(timeout=0.05):
                            drain(block=False)
                        pending.append(pool.submit(read_task, full, entry))
                drain(block=False)
            drain(block=True)
        return self.stats
