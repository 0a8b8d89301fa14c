"""Unpacked files forced to disk behind the unpack, while it goes on writing the next ones.

A restored cluster starts as one that crashed (its base backup was taken running), so before it
replays anything PostgreSQL fsyncs every file of its data directory, one after the other. Right
after an unpack every one of them is still only in the page cache: that start-up then wrote the
whole cluster to disk while recovery waited (seconds for a small database on a busy disk).
pgBackRest's restore syncs each file it writes, so the same walk finds nothing left to write.

Here each file the unpack has finished is handed to a few threads that fsync it while the unpack
(CPU: decryption, decompression, tar) writes the next ones, so disk and processor work at once.
It only moves work earlier: PostgreSQL's own walk still fsyncs every file, so a file these
threads did not reach, or could not open, is made durable exactly as before. The threads are
not waited for: PostgreSQL's fsync of a file waits for what was already submitted for it.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

#: fsyncs at once: a disk queue with a few writes in flight drains faster than one at a time
WORKERS = 2


def _fsync(path: str) -> None:
    try:
        # never through a link: only what the unpack itself wrote at that name
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # PostgreSQL's own walk fsyncs it again and reports what it cannot
    finally:
        os.close(fd)


def synced_behind(members: Iterable[tarfile.TarInfo], into: Path) -> Iterator[tarfile.TarInfo]:
    """``members`` as ``TarFile.extractall`` reads them, each regular file fsynced in the
    background once extraction asked for the member after it (it was then written whole)."""
    pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="bcpctl-syncbehind")
    written: str | None = None
    try:
        for member in members:
            if written is not None:
                pool.submit(_fsync, written)
            # extraction strips leading slashes (the "data" filter) and refuses what leaves ``into``
            written = os.path.join(into, member.name.lstrip("/")) if member.isreg() else None
            yield member
        if written is not None:
            pool.submit(_fsync, written)
    finally:
        pool.shutdown(wait=False)
