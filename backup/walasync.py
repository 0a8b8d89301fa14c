"""``wal push-daemon``: one long-running process per database host archives the ready segments.

A synchronous ``wal push`` is one Python process per segment, and starting Python, importing
bcpctl and reading the configuration cost more CPU than compressing, encrypting and storing
the segment (docs/performance.md, "WAL"). As pgBackRest's ``archive-async`` does, this process
opens the repository once, watches ``pg_wal/archive_status/*.ready`` (PostgreSQL marks a
segment ready only once it is complete), pushes each ready segment in order and records it in
the spool only after the repository acknowledged it (backup/walpushahead.py: the very code path
of ``--ahead``, with its durability and its same-bytes/other-bytes rules). PostgreSQL's
``archive_command`` stays ``wal push %p --spool DIR``: it is answered from the record without
reading the configuration, and pushes the segment itself when the daemon is absent, died or
stays behind (backup/walspool.py), so nothing depends on the daemon for correctness.

The spool's lock (``walspool.DAEMON_LOCK``) tells the front whether a daemon is running and
keeps a second daemon off the same spool. Polling rather than inotify: no maintained binding
is installed, and a listing of ``archive_status`` every tenth of a second costs nothing
measurable next to one segment's push.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from backup.repository import Repository
from backup.walnames import is_segment
from backup.walpushahead import push_recorded
from backup.walspool import DAEMON_LOCK, exposed
from dc.errors import N_, UsageError, os_reason

#: seconds before a segment whose push failed is tried again (the front push reports why)
RETRY_AFTER = 10.0
#: seconds between full looks at archive_status even when its modification time says nothing
#: changed (two changes within one timestamp tick of the file system look like one)
RESCAN_AFTER = 1.0


@dataclass
class DaemonReport:
    system: str
    archived: int = 0
    failed: int = 0
    last_archived: str | None = None


def ready_segments(pg_data: Path) -> list[str]:
    """The segments PostgreSQL marked ready, oldest first."""
    try:
        names = os.listdir(pg_data / "pg_wal" / "archive_status")
    except OSError as exc:
        raise UsageError(
            N_("cannot read {pg_data}/pg_wal/archive_status: {strerror}"), pg_data=pg_data, strerror=os_reason(exc)
        ) from None
    return sorted(n.removesuffix(".ready") for n in names if n.endswith(".ready") and is_segment(n[:-6]))


def _changed_since(status: Path, seen: tuple[int, float]) -> tuple[int, float] | None:
    """``archive_status``'s modification time when it (may have) changed since ``seen``, else None:
    an idle daemon stats one directory per poll instead of listing two."""
    try:
        mtime = status.stat().st_mtime_ns
    except OSError:
        return (0, 0.0)  # let the listing report it
    if mtime == seen[0] and time.monotonic() - seen[1] < RESCAN_AFTER:
        return None
    return (mtime, time.monotonic())


def _prune_records(spool: Path, ready: list[str]) -> None:
    """Drop records of segments no longer ready: PostgreSQL archived them (through the front) and
    will never ask again, so a leftover record would only grow the spool."""
    keep = set(ready)
    for entry in os.listdir(spool):
        name = entry.removesuffix(".archived")
        if entry.endswith(".archived") and is_segment(name) and name not in keep:
            (spool / entry).unlink(missing_ok=True)


def lock_spool(spool: Path) -> int:
    """Hold ``spool``'s daemon lock for the life of the process (file descriptor returned)."""
    try:
        spool.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(spool / DAEMON_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise UsageError(
            N_("cannot use the push spool {spool}: {strerror}"), spool=spool, strerror=os_reason(exc)
        ) from None
    if problem := exposed(spool):  # the fronts would refuse its records: refuse now, not per segment
        os.close(fd)
        raise UsageError(N_("{problem}: refused (chmod 700 it, owned by this account)"), problem=problem)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise UsageError(N_("another wal push-daemon already runs on the spool {spool}"), spool=spool) from None
    return fd


def archive_ready(
    repo: Repository,
    system: str,
    pg_data: Path,
    spool: Path,
    *,
    stopping: Callable[[], bool],
    pause: Callable[[float], object],
    interval: float = 0.1,
) -> DaemonReport:
    """Push every ready segment of ``pg_data`` in order until ``stopping()``; the segment in flight
    is always finished first. ``pause(seconds)`` sleeps between polls (an Event's wait, so a
    stop request ends it at once)."""
    report = DaemonReport(system)
    failed_at: dict[str, float] = {}
    recorded: set[str] = set()  # the front consumes a record a moment before PostgreSQL marks it done
    wal = pg_data / "pg_wal"
    seen = (0, 0.0)
    while not stopping():
        if (changed := _changed_since(wal / "archive_status", seen)) is None:
            pause(interval)
            continue
        seen = changed
        ready = ready_segments(pg_data)
        _prune_records(spool, ready)
        recorded &= set(ready)
        failed_at = {n: at for n, at in failed_at.items() if n in ready}
        pushed = False
        for name in ready:
            if stopping():
                break
            if name in recorded or time.monotonic() - failed_at.get(name, -RETRY_AFTER) < RETRY_AFTER:
                continue
            if push_recorded(repo, system, wal / name, spool):
                report.archived += 1
                report.last_archived = name
                recorded.add(name)
                failed_at.pop(name, None)
                pushed = True
            elif (wal / "archive_status" / f"{name}.ready").exists():
                failed_at[name] = time.monotonic()
                report.failed += 1
        if pushed or failed_at:
            seen = (0, 0.0)  # look again: more may have become ready meanwhile, or a retry is due
        if not pushed:
            pause(interval)
    return report
