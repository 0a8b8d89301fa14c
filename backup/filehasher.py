"""Every changed file's SHA-256, sixteen files at a time, beside the readers that store it.

A snapshot records each file's SHA-256 so a restore can prove it wrote the same bytes. On
hosts without SHA instructions one SHA-256 stream runs at ~200 MB/s: hashing every file
inline while chunking was the largest single cost of a full backup (a third of its CPU).
Sixteen files hashed together in AVX-512 lanes (``backup/_digests.c``) cost about what one
costs, so a thread here reads the files the archiver is about to store a second time, with
``pread`` in 128 KiB segments, and hashes them in lanes while the readers chunk, compress
and encrypt. The archiver hands files over a little ahead of the readers, so both reads of
a file fall close together and the second comes from the page cache.

Two reads must have seen the same bytes. The archiver compares the file's size, mtime,
ctime and inode after both reads with those from before them; a file that changed in
between is read again with its hash taken inline, so the recorded SHA-256 always describes
the stored chunks.
"""

from __future__ import annotations

import os
import threading
from collections import deque

from backup.digests import LANES

try:
    from backup._digests import FileLanes
except ImportError:  # pragma: no cover - the extension is optional
    FileLanes = None

#: bytes read per file and pass (16 lanes x 128 KiB of buffers)
_SEGMENT = 128 * 1024
#: bytes hashed per lane before the thread looks for newly added files
_BUDGET = 1024 * 1024
#: files larger than this are hashed inline by their reader: were one left alone in the
#: lanes at the end, it would go at a sixteenth of their speed, a quarter of OpenSSL's
LANE_MAX_BYTES = 256 * 1024 * 1024


def lanes_available() -> bool:
    return FileLanes is not None and LANES > 1


class Ticket:
    """One file's place in the hasher; ``wait`` returns once it is hashed (or failed)."""

    __slots__ = ("_done", "error", "path", "sha256", "size")

    def __init__(self, path: str) -> None:
        self.path = path
        self.sha256: str | None = None
        self.size = 0
        self.error: str | None = None
        self._done = threading.Event()

    def finish(self, sha256: bytes | None, size: int, error: str | None) -> None:
        self.sha256 = sha256.hex() if sha256 is not None else None
        self.size, self.error = size, error
        self._done.set()

    @property
    def finished(self) -> bool:
        return self._done.is_set()

    def wait(self) -> Ticket:
        self._done.wait()
        return self


class FileHasher:
    """A thread hashing the files it is given, in lanes; create only where lanes exist."""

    def __init__(self, *, fill: int = 1) -> None:
        """``fill``: wait until this many files are in hand before hashing (up to the lanes).

        The lanes step together, so a step costs the same with one lane busy as with sixteen.
        The archiver reads ahead and keeps them busy. With ``fill`` above 1 a ticket may wait
        until more files come or :meth:`close` is called: never wait on one before closing, as
        the archiver (``fill=1``) may.
        """
        self._fill = max(1, min(fill, LANES))
        self._lanes = FileLanes(_SEGMENT)  # type: ignore[misc]
        self._queue: deque[Ticket] = deque()
        self._cond = threading.Condition()
        self._closed = self._abandon = False
        self._thread = threading.Thread(target=self._run, name="bcp-hash", daemon=True)
        self._thread.start()

    def add(self, path: str) -> Ticket:
        ticket = Ticket(path)
        with self._cond:
            if self._closed:
                raise RuntimeError("the file hasher is closed")
            self._queue.append(ticket)
            self._cond.notify()
        return ticket

    def close(self, *, abandon: bool = False) -> None:
        """Stop after the files already added, or with ``abandon`` as soon as the lanes pause."""
        with self._cond:
            self._closed = True
            self._abandon = abandon
            self._cond.notify()
        self._thread.join()

    def _run(self) -> None:
        open_files: dict[Ticket, int] = {}
        try:
            while True:
                with self._cond:
                    while len(self._queue) + len(open_files) < self._fill and not self._closed:
                        self._cond.wait()
                    if self._abandon:
                        raise _Abandoned
                    if not self._queue and not open_files:
                        return
                    starting = [self._queue.popleft() for _ in range(min(len(self._queue), self._lanes.free()))]
                for ticket in starting:
                    try:
                        fd = os.open(ticket.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
                    except OSError as exc:
                        ticket.finish(None, 0, exc.strerror)
                        continue
                    self._lanes.add(fd, ticket)
                    open_files[ticket] = fd
                if not open_files:
                    continue
                for ticket, sha, size, errno in self._lanes.run(_BUDGET):
                    os.close(open_files.pop(ticket))
                    ticket.finish(sha, size, os.strerror(errno) if errno else None)
        except BaseException as exc:  # a bug here must not leave the archiver waiting forever
            failure = "abandoned" if isinstance(exc, _Abandoned) else f"hashing failed: {type(exc).__name__}: {exc}"
            with self._cond:
                self._closed = True
                left = list(self._queue) + list(open_files)
                self._queue.clear()
            for ticket in left:
                ticket.finish(None, 0, failure)
            for fd in open_files.values():
                os.close(fd)


class _Abandoned(Exception):
    """The archiver gave up (an error elsewhere): stop hashing."""
