"""Verifying restored files in a process of their own, in full AVX-512 lanes.

A restore checks every file's SHA-256 against the one backup recorded. One SHA-256 stream
runs at ~300 MB/s on a CPU without SHA instructions; sixteen files hashed together in lanes
(:class:`~backup.filehasher.FileHasher`) run at ~1 GB/s, but only while all sixteen are busy:
the lanes step together, so five busy lanes cost what sixteen do. Each writer process used
to hash its own files, and it could not keep its lanes full: half of one process's bytes sat
in a handful of large files, hashed alone for most of their length. Measured on the 1 GiB
bench restore, the lanes averaged seven busy and cost more CPU (5.2 s) than hashing inline.

Here the writers hand every written file to one verifier process, which hashes the files of
all writers together and only steps its lanes when every lane is busy (until the writers are
done). The large files, written first, then always travel with fifteen others. The verifier
reads each file back from what the kernel holds, so a short or mangled write is caught too.

Protocol: one one-way pipe per writer, created before anything forks. Writers send batches
of ``(path, size, sha256)`` and ``None`` when done; the verifier answers the leader over its
worker channel once every writer is done and every file is hashed.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Sequence
from functools import partial
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from backup.digests import LANES
from backup.filehasher import FileHasher, Ticket
from backup.forked import Channel, Worker, one_way_pipe
from backup.repository import Repository
from backup.tree import Entry
from dc.errors import BcpError

#: a writer sends what it wrote once this many files, or bytes of them, are waiting
_BATCH_FILES = 32
_BATCH_BYTES = 4 * 1024 * 1024
#: finished tickets are swept from behind a slow one once this many are waiting
_SWEEP_AT = 4096


class FileSender:
    """A writer's end: the files it wrote, in batches, then ``None``."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._batch: list[tuple[str, int, str]] = []
        self._bytes = 0

    def add(self, entry: Entry) -> None:
        size = int(entry.get("size", 0))
        self._batch.append((entry["path"], size, str(entry.get("sha256", ""))))
        self._bytes += size
        if len(self._batch) >= _BATCH_FILES or self._bytes >= _BATCH_BYTES:
            self._flush()

    def close(self) -> None:
        self._flush()
        self._send(None)

    def _flush(self) -> None:
        if self._batch:
            self._send(self._batch)
            self._batch, self._bytes = [], 0

    def _send(self, message: list[tuple[str, int, str]] | None) -> None:
        try:
            self._conn.send(message)
        except OSError:  # nobody holds the reading end any more
            raise BcpError("the restore's verifier process died; the restored files are not verified") from None


class Verifier:
    """The leader's handle on the verifier process; create before forking the writers."""

    def __init__(self, repo: Repository, root: Path, writers: int) -> None:
        pipes = [one_way_pipe() for _ in range(writers)]
        readers = [reader for reader, _ in pipes]
        self._senders = [sender for _, sender in pipes]
        self._worker = Worker(repo, partial(_verify, root=str(root), readers=readers, senders=self._senders), ())
        # Only the verifier may hold the reading ends: were it to die, a writer then gets a
        # broken pipe instead of blocking on a full one forever.
        for reader in readers:
            reader.close()

    def sender(self, writer: int) -> FileSender:
        return FileSender(self._senders[writer])

    def result(self) -> dict[str, Any]:
        """``{"verified": n, "mismatches": [paths]}`` once every writer has sent ``None``."""
        return self._worker.recv()  # type: ignore[no-any-return]

    def kill(self) -> None:
        self._worker.kill()


class _Outcomes:
    """Files handed to the hasher, judged as their tickets finish (bounded, in any order)."""

    def __init__(self) -> None:
        self._waiting: deque[tuple[Ticket, str, int, str]] = deque()
        self.verified = 0
        self.mismatches: list[str] = []

    def expect(self, ticket: Ticket, path: str, size: int, sha256: str) -> None:
        self._waiting.append((ticket, path, size, sha256))
        while self._waiting and self._waiting[0][0].finished:
            self._judge(*self._waiting.popleft())
        if len(self._waiting) >= _SWEEP_AT:  # a large file at the front holds up the rest
            left: deque[tuple[Ticket, str, int, str]] = deque()
            for item in self._waiting:
                if item[0].finished:
                    self._judge(*item)
                else:
                    left.append(item)
            self._waiting = left

    def finish(self) -> None:
        for item in self._waiting:
            self._judge(*item)
        self._waiting.clear()

    def _judge(self, ticket: Ticket, path: str, size: int, sha256: str) -> None:
        if ticket.error is None and ticket.sha256 == sha256 and ticket.size == size:
            self.verified += 1
        else:
            self.mismatches.append(path)


def _verify(
    channel: Channel, repo: Repository, *, root: str, readers: Sequence[Connection], senders: Sequence[Connection]
) -> None:
    del repo  # files are read from the target, not the repository
    for sender in senders:
        sender.close()
    hasher = FileHasher(fill=LANES)
    outcomes = _Outcomes()
    live = list(readers)
    try:
        while live:
            for reader in wait(live):
                batch = reader.recv()  # type: ignore[union-attr]
                if batch is None:
                    live.remove(reader)  # type: ignore[arg-type]
                    continue
                for path, size, sha256 in batch:
                    outcomes.expect(hasher.add(os.path.join(root, path)), path, size, sha256)
    except BaseException:
        hasher.close(abandon=True)
        raise
    hasher.close()
    outcomes.finish()
    channel.send({"verified": outcomes.verified, "mismatches": outcomes.mismatches})
