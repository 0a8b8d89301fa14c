"""Who reads a changed file during a backup: threads, or forked worker processes.

Reading a file means chunking, hashing, compressing, encrypting and packing it. The walk
hands each changed file to a reader and collects the entries back in tree order.

* :class:`ForkedReaders` (local repositories): one worker process per extra core, each with
  its own pack writer and index files, fed over a pipe; the walking process reads files too
  whenever the workers already have enough queued. No GIL is shared, so two cores give
  nearly twice one core (see ``backup/forked.py`` for why threads did not).
* :class:`ThreadReaders` (S3, SFTP: sockets do not survive a fork): a thread pool.

Both return, per file, ``(entry or None, error or None, bytes read)``. A file's SHA-256 is
taken while it is read unless the archiver's lane hasher takes it (``hash_now=False``).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from backup.chunker import chunks
from backup.forked import Channel, Worker, can_fork
from backup.repository import Repository
from backup.tree import Entry
from backup.writer import BlobWriter, WriteStats

Outcome = tuple[Entry | None, str | None, int]

#: how much work the walking process queues for a worker before reading a file itself.
_WINDOW_BYTES = 48 * 1024 * 1024
_WINDOW_FILES = 64


def read_file(repo: Repository, writer: BlobWriter, full: str, entry: Entry, hash_now: bool = True) -> Outcome:
    """Chunk and store one file; the entry gains ``chunks``, and ``sha256`` when ``hash_now``.

    Without ``hash_now`` the caller hashes the file itself (see ``backup/filehasher.py``).
    """
    small_limit = repo.config.chunker.min
    sha = None
    try:
        with open(full, "rb", buffering=0) as f:
            if entry["size"] < small_limit:
                data = f.read()
                ids = []
                if data:
                    chunk_id = repo.master.chunk_id_of(data)
                    writer.add(chunk_id, data)
                    ids.append(chunk_id.hex())
                size = len(data)
                if hash_now:
                    sha = hashlib.sha256(data).hexdigest()
            else:
                digest = hashlib.sha256() if hash_now else None
                ids, size = [], 0
                for data in chunks(f, repo.config.chunker, repo.master.chunker_seed):  # type: ignore[arg-type]
                    if digest is not None:
                        digest.update(data)
                    chunk_id = repo.master.chunk_id_of(data)
                    writer.add(chunk_id, data)
                    ids.append(chunk_id.hex())
                    size += len(data)
                if digest is not None:
                    sha = digest.hexdigest()
    except OSError as exc:
        return None, f"{entry['path']}: {exc.strerror}", 0
    error = None
    if size != entry["size"]:
        error = f"{entry['path']}: changed size while being read ({entry['size']} -> {size})"
        entry["size"] = size
    if sha is not None:
        entry["sha256"] = sha
    entry["chunks"] = ids
    return entry, error, size


class ThreadReaders:
    def __init__(self, repo: Repository, writer: BlobWriter, workers: int) -> None:
        self._repo, self._writer = repo, writer
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="bcp-read")
        self._slots = threading.BoundedSemaphore(workers)
        self.extra_stats = WriteStats()

    def submit(self, full: str, entry: Entry, wait: Callable[[], None], hash_now: bool = True) -> Any:
        while not self._slots.acquire(timeout=0.05):
            wait()
        return self._pool.submit(self._read, full, entry, hash_now)

    def _read(self, full: str, entry: Entry, hash_now: bool) -> Outcome:
        try:
            return read_file(self._repo, self._writer, full, entry, hash_now)
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
    """A worker process: read the files it is sent, then flush its packs and index."""
    writer = BlobWriter(repo, uploaders=1)
    try:
        while (task := channel.recv()) is not None:
            channel.send(read_file(repo, writer, *task))
        writer.flush()
        channel.send(writer.stats)
    finally:
        writer.close()


class _Queued:
    __slots__ = ("size", "worker")

    def __init__(self, worker: int, size: int) -> None:
        self.worker, self.size = worker, size


class _Done:
    __slots__ = ("outcome",)

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome


class ForkedReaders:
    """Worker processes plus the walking process itself; create before any thread starts."""

    def __init__(self, repo: Repository, writer: BlobWriter, workers: int, condemned: set[str]) -> None:
        self._repo, self._writer = repo, writer
        self._workers = [Worker(repo, _reader_worker, condemned) for _ in range(max(1, workers - 1))]
        self._files = [0] * len(self._workers)
        self._bytes = [0] * len(self._workers)
        self.extra_stats = WriteStats()

    def submit(self, full: str, entry: Entry, wait: Callable[[], None], hash_now: bool = True) -> _Queued | _Done:
        index = min(range(len(self._workers)), key=self._bytes.__getitem__)
        size = entry["size"]
        queued = self._bytes[index]
        # This process reads the file itself only when every worker has plenty queued AND at
        # least as many bytes as the file: while it reads, it cannot feed them, and a worker
        # whose queue runs dry idles a core (the benchmark's 20-70 MB SQL dumps did that).
        if (self._files[index] >= _WINDOW_FILES or queued >= _WINDOW_BYTES) and queued >= size:
            return _Done(read_file(self._repo, self._writer, full, entry, hash_now))
        self._workers[index].send((full, entry, hash_now))
        self._files[index] += 1
        self._bytes[index] += size
        return _Queued(index, size)

    def ready(self, handle: _Queued | _Done) -> bool:
        return isinstance(handle, _Done) or self._workers[handle.worker].poll()

    def result(self, handle: _Queued | _Done) -> Outcome:
        if isinstance(handle, _Done):
            return handle.outcome
        outcome = self._workers[handle.worker].recv()
        self._files[handle.worker] -= 1
        self._bytes[handle.worker] -= handle.size
        return outcome

    def close(self) -> None:
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
        return ForkedReaders(repo, writer, workers, condemned)
    return ThreadReaders(repo, writer, workers)
