"""Who reads a changed file during a backup: threads, or forked worker processes.

Reading a file means chunking, hashing, compressing, encrypting and packing it. The walk
hands each changed file to a reader and collects the entries back in tree order.

* :class:`ForkedReaders` (local repositories): one worker process per core, each with its
  own pack writer and index files, fed over a pipe. No GIL is shared, so two cores give
  nearly twice one core (see ``backup/forked.py`` for why threads did not).
* :class:`ThreadReaders` (S3, SFTP: sockets do not survive a fork): a thread pool.

Both return, per file, ``(entry or None, error or None, bytes read)``. A file's digest
(BLAKE3, :mod:`backup.filedigest`) and chunk lengths are taken from the bytes as they are
chunked, so they always describe the stored chunks, and the reader hashing them is already
on its own core.
"""

from __future__ import annotations

import errno
import io
import os
import select
import stat
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from backup.chunker import chunks
from backup.contenttype import FIELD as TYPE_FIELD
from backup.contenttype import content_type
from backup.filedigest import FILE_DIGEST, hasher
from backup.forked import Channel, Worker, can_fork
from backup.repository import Repository
from backup.tree import Entry
from backup.writer import BlobWriter, WriteStats
from dc.errors import N_, Message, os_reason

Outcome = tuple[Entry | None, str | None, int]

#: how much work the walking process queues for a worker before it waits for answers
_WINDOW_BYTES = 48 * 1024 * 1024
_WINDOW_FILES = 64
#: small files go to a worker in batches of up to this many files or bytes: one message
#: each way per batch, not per file (per-file messages and the wake-ups for each answer took
#: half of the walking process's CPU over thousands of office files; docs/performance.md)
_BATCH_FILES = 16
_BATCH_BYTES = 1024 * 1024


def read_file(repo: Repository, writer: BlobWriter, full: str, entry: Entry) -> Outcome:
    """Chunk, hash and store one file; the entry gains ``chunks``, their ``sizes``, the
    file's digest (:data:`~backup.filedigest.FILE_DIGEST`) and its content type
    (:mod:`backup.contenttype`)."""
    small_limit = repo.config.chunker.min
    digest = hasher(FILE_DIGEST)
    ids: list[str] = []
    sizes: list[int] = []
    kind = content_type(b"")
    try:
        with _open_regular(full) as f:
            parts = (
                [f.read()] if entry["size"] < small_limit else chunks(f, repo.config.chunker, repo.master.chunker_seed)
            )
            for chunk in parts:
                if not chunk:
                    continue
                if not ids:  # the first chunk is in memory already: its head tells the type
                    kind = content_type(chunk)
                digest.update(chunk)
                chunk_id = repo.master.chunk_id_of(chunk)
                writer.add(chunk_id, chunk)
                ids.append(chunk_id.hex())
                sizes.append(len(chunk))
    except OSError as exc:
        return None, Message(N_("{path}: {reason}"), path=entry["path"], reason=_why(exc)), 0
    size = sum(sizes)
    error = None
    if size != entry["size"]:
        error = Message(
            N_("{path}: changed size while being read ({recorded} -> {read})"),
            path=entry["path"],
            recorded=entry["size"],
            read=size,
        )
        entry["size"] = size
    entry[FILE_DIGEST] = digest.hexdigest()
    entry["chunks"] = ids
    entry["sizes"] = sizes
    entry[TYPE_FIELD] = kind
    return entry, error, size


#: why a file the walk saw as regular is not read: in its place now, a FIFO, device or directory
_NOT_REGULAR = "no longer a regular file"


def _why(exc: OSError) -> str:
    if exc.strerror == _NOT_REGULAR:
        return Message(N_("no longer a regular file"))
    return os_reason(exc)


def _open_regular(full: str) -> io.FileIO:
    """The file the walk saw as regular, never following a link or blocking on a FIFO put in
    its place since (O_NONBLOCK does nothing to a regular file's reads)."""
    fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, _NOT_REGULAR)
    return os.fdopen(fd, "rb", buffering=0)


class ThreadReaders:
    def __init__(self, repo: Repository, writer: BlobWriter, workers: int) -> None:
        self._repo, self._writer = repo, writer
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="bcp-read")
        self._slots = threading.BoundedSemaphore(workers)
        self.extra_stats = WriteStats()

    def submit(self, full: str, entry: Entry, wait: Callable[[], None]) -> Any:
        while not self._slots.acquire(timeout=0.05):
            wait()
        return self._pool.submit(self._read, full, entry)

    def _read(self, full: str, entry: Entry) -> Outcome:
        try:
            return read_file(self._repo, self._writer, full, entry)
        finally:
            self._slots.release()

    def ready(self, handle: Future[Outcome]) -> bool:
        return handle.done()

    def result(self, handle: Future[Outcome]) -> Outcome:
        return handle.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def abort(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _reader_worker(channel: Channel, repo: Repository) -> None:
    """A worker process: read the batches of files it is sent, then flush its packs and index."""
    writer = BlobWriter(repo, uploaders=1)
    try:
        while (batch := channel.recv()) is not None:
            channel.send([read_file(repo, writer, full, entry) for full, entry in batch])
        writer.flush()
        channel.send(writer.stats)
    finally:
        writer.close()


class _Queued:
    """A file handed to the readers: ``worker`` is ``None`` while its batch is still open."""

    __slots__ = ("worker",)

    def __init__(self) -> None:
        self.worker: int | None = None


class ForkedReaders:
    """Worker processes fed over pipes; create before any thread starts.

    The walking process reads no file itself, only walks and feeds the workers: a file it read
    would leave the workers' queues to run dry meanwhile. Small files travel in batches (one
    message for up to :data:`_BATCH_FILES`); a batch is sent when it is full, before a large
    file, and as soon as the caller asks about a file in it — the caller collects in order, so
    at that moment nothing else is in flight and the workers would otherwise wait for it.
    Outcomes are taken off a worker's pipe as soon as they arrive, so neither side ever blocks
    writing to a full pipe while the other does the same.
    """

    def __init__(self, repo: Repository, workers: int, condemned: set[str]) -> None:
        self._workers = [Worker(repo, _reader_worker, condemned) for _ in range(max(1, workers - 1))]
        self._small = repo.config.chunker.min
        #: per worker: (files, bytes) of the batches sent and not yet answered, and their sums
        self._in_flight: list[deque[tuple[int, int]]] = [deque() for _ in self._workers]
        self._files = [0] * len(self._workers)
        self._bytes = [0] * len(self._workers)
        #: per worker: outcomes received and not yet collected, in the order the files were sent
        self._answers: list[deque[Outcome]] = [deque() for _ in self._workers]
        #: the batch being filled: tasks and their handles
        self._open: list[tuple[str, Entry]] = []
        self._open_handles: list[_Queued] = []
        self._open_bytes = 0
        # One poll set for the life of the readers: the walk asks whether answers have come
        # after every file, and multiprocessing's wait() builds a new selector per call.
        self._poller = select.poll()
        self._worker_of = {worker.fileno(): index for index, worker in enumerate(self._workers)}
        for fd in self._worker_of:
            self._poller.register(fd, select.POLLIN)
        self.extra_stats = WriteStats()

    def submit(self, full: str, entry: Entry, wait: Callable[[], None]) -> _Queued:
        small = entry["size"] < self._small
        if not small:
            self._send_open(wait)  # files reach each worker in the order they were submitted
        handle = _Queued()
        self._open.append((full, entry))
        self._open_handles.append(handle)
        self._open_bytes += entry["size"]
        if not small or len(self._open) >= _BATCH_FILES or self._open_bytes >= _BATCH_BYTES:
            self._send_open(wait)
        return handle

    def _send_open(self, wait: Callable[[], None] | None) -> None:
        """Send the open batch to the least loaded worker, waiting for room in its window."""
        if not self._open:
            return
        batch, handles, size = self._open, self._open_handles, self._open_bytes
        self._open, self._open_handles, self._open_bytes = [], [], 0
        while True:
            index = min(range(len(self._workers)), key=self._bytes.__getitem__)
            if self._files[index] < _WINDOW_FILES and self._bytes[index] < _WINDOW_BYTES:
                break
            if wait is not None:
                wait()  # the caller collects what is ready, in order
            self._take_answers(timeout_ms=50)
        self._workers[index].send(batch)
        self._in_flight[index].append((len(batch), size))
        self._files[index] += len(batch)
        self._bytes[index] += size
        for handle in handles:
            handle.worker = index

    def _take_answers(self, timeout_ms: int) -> None:
        """Wait up to ``timeout_ms`` for any worker to answer; take every answer already sent."""
        while events := self._poller.poll(timeout_ms):
            for fd, _event in events:
                index = self._worker_of[fd]
                if self._in_flight[index]:
                    self._receive(index)
                else:
                    self._workers[index].recv()  # nothing asked: a worker that died or failed raises
            timeout_ms = 0

    def _receive(self, index: int) -> None:
        self._answers[index].extend(self._workers[index].recv())
        files, size = self._in_flight[index].popleft()
        self._files[index] -= files
        self._bytes[index] -= size

    def _sent(self, handle: _Queued) -> int:
        if handle.worker is None:
            self._send_open(None)
        assert handle.worker is not None, "a handle is either sent or in the open batch"
        return handle.worker

    def ready(self, handle: _Queued) -> bool:
        worker = self._sent(handle)
        if not self._answers[worker]:
            self._take_answers(timeout_ms=0)
        return bool(self._answers[worker])

    def result(self, handle: _Queued) -> Outcome:
        worker = self._sent(handle)
        if not self._answers[worker]:
            self._receive(worker)
        return self._answers[worker].popleft()

    def close(self) -> None:
        self._send_open(None)
        for worker in self._workers:
            stats = worker.finish()
            for name, value in vars(stats).items():
                setattr(self.extra_stats, name, getattr(self.extra_stats, name) + value)

    def abort(self) -> None:
        for worker in self._workers:
            worker.kill()


def make_readers(
    repo: Repository, writer: BlobWriter, workers: int, condemned: set[str]
) -> ThreadReaders | ForkedReaders:
    if can_fork(repo) and workers > 1:
        return ForkedReaders(repo, workers, condemned)
    return ThreadReaders(repo, writer, workers)
