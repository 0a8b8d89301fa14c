"""Forked worker processes that share one unlocked repository (local storage only).

Threads were the first design, and on two cores they lost: hashing, zstd and I/O release the
GIL, but AES-GCM and the per-file Python work do not, and every short system call became a
GIL hand-off (a futex round trip each — 600,000 of them in one 1 GiB restore), costing about
half as much CPU again as the work itself. Processes forked after the repository is unlocked
share the key and configuration without unlocking again and run without contention.

Only local repositories fork: the children reopen the directory and the index cache (an
SQLite connection must not cross a fork). Network backends hold sockets and helper threads
that do not survive a fork, so restores from S3 or SFTP keep using threads.

A child that dies by a signal takes the job with it: a SIGKILLed worker is indistinguishable
from a SIGKILLed job, which is what the crash tests rely on (see ``dc.failpoint``).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from typing import Any, TypeVar

from backup import errors as backup_errors
from backup.backend import LocalBackend
from backup.cache import BlobCache
from backup.repository import Repository
from dc import errors as dc_errors
from dc.errors import BcpError
from dc.failpoint import LEADER_ENV

T = TypeVar("T")

Job = Callable[[Repository, int, int], T]


def can_fork(repo: Repository) -> bool:
    """Plain local directories only (subclasses and wrappers may hold state a fork would break)."""
    return type(repo.backend) is LocalBackend and hasattr(os, "fork")


def _child_repository(repo: Repository) -> Repository:
    backend = LocalBackend(repo.backend.root)  # type: ignore[attr-defined]
    cache = BlobCache(repo.cache.path)
    return Repository(backend, repo.config, repo.config_raw, repo.master, repo.slot_id, cache)


def _child(conn: Any, repo: Repository, job: Job[T], index: int, count: int, leader: int) -> None:
    os.environ[LEADER_ENV] = str(leader)
    own = _child_repository(repo)
    try:
        conn.send(("ok", job(own, index, count)))
    except BcpError as exc:
        conn.send(("error", type(exc).__name__, exc.message))
    except BaseException as exc:  # a bug in a worker: report it, never hang the parent
        conn.send(("crash", f"{type(exc).__name__}: {exc}"))
    finally:
        own.cache.close()
        conn.close()


def _reraise(message: tuple[str, ...]) -> None:
    """A worker's error as the same BcpError subclass (so the exit code is the same)."""
    if message[0] == "error":
        cls = getattr(backup_errors, message[1], None) or getattr(dc_errors, message[1], None)
        if isinstance(cls, type) and issubclass(cls, BcpError):
            raise cls(message[2])
    raise BcpError(f"worker process failed: {message[-1]}")


def run_forked(repo: Repository, count: int, job: Job[T]) -> list[T]:
    """Run ``job(repo, i, count)`` for i in 0..count-1; 0 in this process, the rest forked.

    The caller must hold no threads (a fork copies locks in whatever state they are in).
    """
    if count <= 1:
        return [job(repo, 0, 1)]
    context = multiprocessing.get_context("fork")
    children = []
    for index in range(1, count):
        parent_end, child_end = context.Pipe(duplex=False)
        process = context.Process(target=_child, args=(child_end, repo, job, index, count, os.getpid()), daemon=True)
        process.start()
        child_end.close()
        children.append((process, parent_end))
    try:
        results = [job(repo, 0, count)]
    except BaseException:
        for process, _ in children:
            process.kill()
        raise
    for process, conn in children:
        try:
            message = conn.recv()
        except EOFError:
            process.join()
            if process.exitcode is not None and process.exitcode < 0:
                # The worker was killed: so is the job (it cannot have finished its share).
                os.kill(os.getpid(), -process.exitcode)
            raise BcpError(f"a worker process exited with {process.exitcode} without a result") from None
        process.join()
        if message[0] != "ok":
            for other, _ in children:
                other.kill()
            _reraise(message)
        results.append(message[1])
    return results
