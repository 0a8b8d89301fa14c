"""Hashing a local source's packs while the target is still being opened.

A replication run spends its first second in one thread: imports, the S3 client, the
manifest check against the pinned key, both listings. The second core idles meanwhile, and
the first uploads then wait for their objects to be hashed. :class:`SourceDigests` hashes
the packs of a local repository in that window — newest first, because an incremental run
needs exactly the packs written since the last one — and the transfer starts with objects
whose SHA-256 has already been checked against the name.

It only serves targets that check a Content-MD5 (S3): the MD5 computed here beside the
SHA-256 is what the upload sends, so the server refuses the object if its bytes changed
after they were checked (replication/transfer.py). The thread stops at the first batch
boundary after the transfer begins; nothing waits for it.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import threading
from pathlib import Path

from backup.digests import LANES, Digests, digest_all

_PACK_DIRS = ("data", "meta")


class SourceDigests:
    def __init__(self, root: Path, *, first: int = 4, batch: int = LANES) -> None:
        self.root = root
        #: a small first batch (one per upload thread) is ready soon enough for the first uploads
        self.first = max(1, first)
        self.batch = max(1, batch)
        self._lock = threading.Lock()
        self._known: dict[str, tuple[int, Digests]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bcp-prehash", daemon=True)

    def start(self) -> SourceDigests:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Finish the batch in hand and start no other (returns at once)."""
        self._stop.set()

    def join(self) -> None:
        """Stop after the batch in hand and wait for it."""
        self._stop.set()
        self._thread.join()

    def wait(self) -> None:
        """Wait until every pack is hashed (a target that takes long to open would allow it)."""
        self._thread.join()

    def take(self, key: str, size: int) -> Digests | None:
        """The digests of ``key`` if it was hashed here at ``size`` bytes (each handed out once)."""
        with self._lock:
            found = self._known.pop(key, None)
        return found[1] if found is not None and found[0] == size else None

    @staticmethod
    def covers(key: str) -> bool:
        return key.startswith(tuple(f"{top}/" for top in _PACK_DIRS))

    # -- the thread -------------------------------------------------------------------------

    def _packs(self) -> list[tuple[float, int, str]]:
        found = []
        for top in _PACK_DIRS:
            with contextlib.suppress(OSError), os.scandir(self.root / top) as shards:
                for shard in shards:
                    if not shard.is_dir():
                        continue
                    with contextlib.suppress(OSError), os.scandir(shard.path) as entries:
                        for entry in entries:
                            if entry.name.startswith("."):
                                continue  # an object being written (LocalBackend's temporary name)
                            with contextlib.suppress(OSError):
                                st = entry.stat()
                                found.append((st.st_mtime, st.st_size, f"{top}/{shard.name}/{entry.name}"))
        found.sort(reverse=True)  # newest first, then largest
        return found

    def _run(self) -> None:
        # Only the CPU the start-up leaves: the main thread (imports, the S3 client) and the
        # control-database helper are what the first upload waits for. Nice is per thread on Linux.
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        packs = self._packs()
        starts = [0, *range(self.first, len(packs), self.batch)] if packs else []
        for start, end in zip(starts, [*starts[1:], len(packs)], strict=True):
            if self._stop.is_set():
                return
            maps: list[tuple[str, mmap.mmap]] = []
            try:
                for _, size, key in packs[start:end]:
                    if size and (view := _map(self.root / key, size)) is not None:
                        maps.append((key, view))
                digests = digest_all([view for _, view in maps], md5=True)
                with self._lock:
                    for (key, view), dig in zip(maps, digests, strict=True):
                        self._known[key] = (len(view), dig)
            finally:
                for _, view in maps:
                    view.close()


def _map(path: Path, size: int) -> mmap.mmap | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None  # gone or unreadable: the transfer reads it itself and reports the problem
    try:
        if os.fstat(fd).st_size != size:
            return None
        return mmap.mmap(fd, size, prot=mmap.PROT_READ, flags=mmap.MAP_SHARED | mmap.MAP_POPULATE)
    except OSError:
        return None
    finally:
        os.close(fd)
