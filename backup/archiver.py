"""Backing up a directory tree or a stream into the repository.

A directory is walked in tree order beside its parent snapshot's entries (a merge join, so
memory does not grow with the tree). Files whose size, mtime, ctime and inode match the
parent are not read again — restic's rule — as long as their blobs are still indexed.
Changed files go to a worker pool, each file chunked, compressed and encrypted in one thread
(no hand-offs: on two cores those cost more than they bring when there are many files),
which also takes the file's SHA-256 from the same bytes it stores; results are collected back
in order so the tree stays sorted. A single stream (a database dump) has no siblings to run
beside, so it fans blob encoding out to a pool.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backup.chunker import ReadableStream, chunks
from backup.contenttype import FIELD as TYPE_FIELD
from backup.contenttype import type_lost
from backup.errors import SourceError
from backup.filedigest import copy_content
from backup.patterns import Selection
from backup.readers import make_readers
from backup.repository import Repository
from backup.tree import Entry, TreeWriter, entry_from_stat, iter_tree, kind_of, path_key, unchanged
from backup.writer import BlobWriter, WriteStats
from dc.errors import N_, Message, os_reason

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
    hardlinks: int = 0
    #: FIFOs, sockets and device nodes
    specials: int = 0
    bytes_total: int = 0
    bytes_read: int = 0
    #: changed files whose parent entry recorded a content type (:mod:`backup.contenttype`)
    files_typed: int = 0
    #: of those, files of a known type that now look like no type (ciphertext does)
    files_type_lost: int = 0
    #: what was not backed up and why, each a :class:`~dc.errors.Message` (shown in the operator's language)
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
    stream: ReadableStream,
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


def exclusion(patterns: tuple[str, ...]) -> Callable[[str], bool]:
    """``backup run --exclude``: True for a relative path to leave out, by the pattern rules
    restore, ls and find use (:mod:`backup.patterns`; a bad pattern is exit 2 before any read)."""
    left_in = Selection(exclude=patterns)
    return lambda rel: not left_in(rel)


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
        self._excluded = exclusion(exclude)
        self.progress = progress
        self.stats = TreeStats()
        self.worker_stats = WriteStats()
        #: (st_dev, st_ino) -> first name, of files with more than one name
        self._link_names: dict[tuple[int, int], str] = {}
        #: relative path -> the parent's content type, of changed files being read (bounded by
        #: the readers' window: taken out again when the file's entry comes back)
        self._parent_types: dict[str, str] = {}

    # -- walking ------------------------------------------------------------------------------

    def _walk(self, root: Path) -> Iterator[tuple[str, str, os.stat_result]]:
        """``(relative path, full path, lstat)`` in tree order; unreadable dirs are noted and skipped."""
        try:
            root_stat = os.lstat(root)
        except OSError as exc:
            raise SourceError(
                N_("cannot read backup source {root}: {strerror}"), root=root, strerror=os_reason(exc)
            ) from None
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
            self.stats.note_error(Message(N_("{path}: {reason}"), path=rel_dir or ".", reason=os_reason(exc)))
            return []
        children = []
        for child in listing:
            rel = f"{rel_dir}/{child.name}" if rel_dir else child.name
            if self._excluded(rel):
                continue
            try:
                st = child.stat(follow_symlinks=False)
            except OSError as exc:
                self.stats.note_error(Message(N_("{path}: {reason}"), path=rel, reason=os_reason(exc)))
                continue
            if kind_of(st.st_mode) is None:
                self.stats.note_error(
                    Message(
                        N_("{path}: a file of unknown type (mode {mode}), not backed up"),
                        path=rel,
                        mode=f"{st.st_mode:o}",
                    )
                )
                continue
            children.append((rel, child.path, st))
        return children

    # -- reading ------------------------------------------------------------------------------

    def _parent_entries(self, parent_tree: tuple[str, ...] | None) -> Iterator[Entry]:
        if parent_tree:
            yield from iter_tree(self.repo.read_blob, parent_tree)

    def _first_link(self, rel: str, st: os.stat_result) -> str | None:
        """For a non-directory with other names in this tree: the name seen first, unless ``rel`` is it."""
        if st.st_nlink < 2:
            return None
        first = self._link_names.setdefault((st.st_dev, st.st_ino), rel)
        return None if first == rel else first

    def _still_stored(self, entry: Entry) -> bool:
        return all(self.repo.cache.has(bytes.fromhex(c)) for c in entry.get("chunks", ()))

    def _items(self, root: Path, parent_tree: tuple[str, ...] | None) -> Iterator[tuple[Entry, str | None]]:
        """Every entry in tree order, with the full path when the file must be read (else ``None``).

        Unchanged files get their parent's content fields here, walked beside the parent
        snapshot's entries (a merge join).
        """
        parents = self._parent_entries(parent_tree)
        parent = next(parents, None)
        for rel, full, st in self._walk(root):
            entry = entry_from_stat(rel, st)
            key = path_key(rel)
            while parent is not None and path_key(parent["path"]) < key:
                parent = next(parents, None)
            old = parent if parent is not None and parent["path"] == rel else None
            kind = entry["type"]
            if kind == "dir":
                self.stats.dirs += 1
                yield entry, None
            elif (first := self._first_link(rel, st)) is not None:
                # a later name of a multiply-linked file, link or node: the first name carries it
                self.stats.hardlinks += 1
                yield {"path": rel, "type": "hardlink", "link": first, "mtime": entry["mtime"]}, None
            elif kind == "symlink":
                try:
                    # the exact target bytes, whatever they point at (tree.py keeps non-UTF-8 ones)
                    entry["target"] = os.readlink(full)
                except OSError as exc:
                    self.stats.note_error(Message(N_("{path}: {reason}"), path=rel, reason=os_reason(exc)))
                    continue
                self.stats.symlinks += 1
                yield entry, None
            elif kind != "file":
                self.stats.specials += 1
                yield entry, None
            else:
                self.stats.bytes_total += entry["size"]
                if old is not None and unchanged(old, entry) and self._still_stored(old):
                    copy_content(old, entry)
                    self.stats.files_unmodified += 1
                    if self.progress:
                        self.progress(entry["size"])
                    yield entry, None
                else:
                    if old is None:
                        self.stats.files_new += 1
                    else:
                        self.stats.files_changed += 1
                        if isinstance(before := old.get(TYPE_FIELD), str):
                            self._parent_types[rel] = before
                    yield entry, full

    def run(
        self, root: Path, parent_tree: tuple[str, ...] | None, tree: TreeWriter, condemned: Iterable[str] = ()
    ) -> TreeStats:
        # Readers first: forked workers must start before this process runs any thread.
        readers = make_readers(self.repo, self.writer, self.workers, set(condemned))
        pending: deque[tuple[Entry, Any]] = deque()

        #: first names of multiply-linked files that could not be read: their later names go too
        unread_links: set[str] = set()

        def collect(path: str, outcome: tuple[Entry | None, str | None, int]) -> None:
            entry, error, size = outcome
            before = self._parent_types.pop(path, None)
            if before is not None and entry is not None:
                self.stats.files_typed += 1
                self.stats.files_type_lost += type_lost(before, entry.get(TYPE_FIELD))
            if error:
                self.stats.note_error(error)
            self.stats.bytes_read += size
            if self.progress:
                self.progress(size)
            if entry is not None:
                tree.add(entry)
            elif path in self._link_names.values():
                unread_links.add(path)

        def drain(block: bool) -> None:
            while pending:
                ready, handle = pending[0]
                if handle is None:
                    pending.popleft()
                    if ready["type"] == "hardlink" and ready["link"] in unread_links:
                        self.stats.note_error(
                            Message(
                                N_("{path}: not backed up: hard link to {link}, unread"),
                                path=ready["path"],
                                link=ready["link"],
                            )
                        )
                    else:
                        tree.add(ready)
                    continue
                if not block and len(pending) < _MAX_PENDING_ENTRIES and not readers.ready(handle):
                    return
                pending.popleft()
                collect(ready["path"], readers.result(handle))

        try:
            for entry, full in self._items(root, parent_tree):
                handle = None if full is None else readers.submit(full, entry, lambda: drain(False))
                pending.append((entry, handle))
                drain(block=False)
            drain(block=True)
            readers.close()
        except BaseException:
            readers.abort()
            raise
        self.worker_stats = readers.extra_stats
        return self.stats
