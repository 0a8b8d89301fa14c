"""Forked worker processes that share one unlocked repository (local storage only).

Processes rather than threads: AES-GCM and the per-file Python work hold the GIL, and with
threads every short system call became a GIL hand-off that cost more CPU than it saved
(docs/performance.md). Processes forked after the repository is unlocked share the key and
configuration without unlocking again and run without contention.

Only local repositories fork: a worker reopens the directory and the index cache (an SQLite
connection must not cross a fork). Network backends hold sockets and helper threads that do
not survive a fork, so S3 and SFTP keep using threads. Fork before starting any thread: a
fork copies locks in whatever state other threads left them.

A worker that dies by a signal takes the job with it: a SIGKILLed worker is
indistinguishable from a SIGKILLed job, which is what the crash tests rely on
(``dc.failpoint`` kills the leader too).
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterable
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from backup import errors as backup_errors
from backup.cache import BlobCache
from backup.repository import Repository
from dc import errors as dc_errors
from dc.errors import N_, BcpError
from dc.failpoint import LEADER_ENV
from storage.local import LocalBackend

T = TypeVar("T")

_context = multiprocessing.get_context("fork")
_PR_SET_PDEATHSIG = 1


def can_fork(repo: Repository) -> bool:
    """Plain local directories, from a single-threaded process only.

    Subclasses and wrappers may hold state a fork would break. A process with other threads
    (``bcpctl serve`` runs jobs on a pool beside its scheduler and web threads) may be
    holding any lock — logging's, the allocator's, SQLite's — at the instant of the fork, and
    the child would wait on it forever; such a process reads with threads instead.
    """
    return type(repo.backend) is LocalBackend and hasattr(os, "fork") and threading.active_count() == 1


class Channel:
    """The worker's end: every message is tagged so failures travel as data, not EOF.

    Each message carries what the worker's repository journal noted since the last one (the
    index files its writer stored): a format-2 signature signs what the leader's journal holds,
    and an index file known only to a worker would go unsigned, its packs unverifiable offsite.
    """

    def __init__(self, conn: Connection, own: Repository | None = None) -> None:
        self._conn = conn
        self._own = own

    def recv(self) -> Any:
        return self._conn.recv()

    def send(self, payload: Any) -> None:
        noted = self._own.journal.export() if self._own is not None else None
        self._conn.send(("ok", payload, noted))


def _die_with_leader(leader: int) -> None:
    """Linux: the kernel SIGKILLs this worker when the leader dies, however it dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != leader:  # the leader died before the request took effect
        os._exit(1)


def _bootstrap(
    conn: Connection,
    leader_end: Connection,
    repo: Repository,
    body: Callable[[Channel, Repository], None],
    condemned: Iterable[str],
    leader: int,
) -> None:
    # The leader's end of the pipe was copied by the fork: close it, or the leader's death
    # would never show here as end-of-file.
    leader_end.close()
    _die_with_leader(leader)
    os.environ[LEADER_ENV] = str(leader)
    backend = repo.backend
    assert isinstance(backend, LocalBackend), "can_fork() lets only a plain local directory through"
    own = Repository(
        LocalBackend(backend.root),
        repo.config,
        repo.config_raw,
        repo.master,
        repo.slot_id,
        BlobCache(repo.cache.path),
    )
    own.cache.exclude_packs(condemned)
    try:
        body(Channel(conn, own), own)
    except BcpError as exc:
        conn.send(("error", type(exc).__name__, exc.message))
    except BaseException as exc:  # a bug in a worker: report it, never leave the leader waiting
        conn.send(("crash", f"{type(exc).__name__}: {exc}"))
    finally:
        own.cache.close()
        conn.close()


class Worker:
    """The leader's end of one worker process."""

    def __init__(self, repo: Repository, body: Callable[[Channel, Repository], None], condemned: Iterable[str]) -> None:
        self._journal = repo.journal
        self._conn, child_end = _context.Pipe(duplex=True)
        self._process = _context.Process(
            target=_bootstrap, args=(child_end, self._conn, repo, body, tuple(condemned), os.getpid()), daemon=True
        )
        self._process.start()
        child_end.close()

    def send(self, message: Any) -> None:
        self._conn.send(message)

    def poll(self) -> bool:
        return self._conn.poll()

    def fileno(self) -> int:
        """For :func:`multiprocessing.connection.wait`: readable when the worker has sent something."""
        return self._conn.fileno()

    def recv(self) -> Any:
        try:
            message = self._conn.recv()
        except EOFError:
            self._process.join()
            code = self._process.exitcode
            if code is not None and code < 0:
                # Killed by a signal: so is the job (the worker cannot have finished its share).
                os.kill(os.getpid(), -code)
            raise BcpError(N_("a worker process exited with {code} without finishing"), code=code) from None
        if message[0] == "ok":
            if message[2] is not None:
                self._journal.merge(message[2])
            return message[1]
        self.kill()
        if message[0] == "error":
            cls = getattr(backup_errors, message[1], None) or getattr(dc_errors, message[1], None)
            if isinstance(cls, type) and issubclass(cls, BcpError):
                raise cls(message[2])
        raise BcpError(N_("worker process failed: {message_}"), message_=message[-1])

    def finish(self) -> Any:
        """Tell the worker there is no more work; return its final message."""
        self._conn.send(None)
        result = self.recv()
        self._process.join()
        return result

    def kill(self) -> None:
        if self._process.is_alive():
            self._process.kill()
        self._process.join()


class Claims:
    """A counter shared by forked processes: each ``take()`` returns the next unclaimed number.

    Work handed out by ``index % count`` ends as unevenly as the items are sized (one big file
    keeps one process busy long after the others finished); claiming the next item whenever a
    process is free ends them together. Create it before forking.
    """

    def __init__(self) -> None:
        self._next = _context.Value("q", 0, lock=True)
        self._done = _context.Value("q", 0, lock=True)

    def take(self) -> int:
        with self._next.get_lock():
            value = self._next.value
            self._next.value = value + 1
        return value

    def add_done(self, amount: int) -> int:
        """Add to the shared progress total; return the new total."""
        with self._done.get_lock():
            self._done.value += amount
            return int(self._done.value)


def run_forked(repo: Repository, count: int, job: Callable[[Repository, int, int], T]) -> list[T]:
    """Run ``job(repo, i, count)`` for i in 0..count-1: 0 here, the rest in forked workers."""
    if count <= 1:
        return [job(repo, 0, 1)]

    def body_for(index: int) -> Callable[[Channel, Repository], None]:
        def body(channel: Channel, own: Repository) -> None:
            channel.send(job(own, index, count))

        return body

    workers = [Worker(repo, body_for(index), ()) for index in range(1, count)]
    try:
        results = [job(repo, 0, count)]
        results += [worker.recv() for worker in workers]
    except BaseException:
        for worker in workers:
            worker.kill()
        raise
    for worker in workers:
        worker.kill()
    return results
