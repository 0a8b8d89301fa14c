"""The spool of ``wal get`` and ``wal push``: files fetched ahead of recovery, pushes acknowledged ahead.

Both commands look here before they read the configuration or open the repository, so a file
already fetched (by ``bcpctl restore``'s feed, backup/walfeed.py, or an earlier get's
``--prefetch``) or already archived (by an earlier push's ``--ahead``) costs PostgreSQL a
process start and a rename, not an unlock. This module imports nothing heavy for that reason.

Why answering from here keeps each command's promise:

- ``wal get``: a spooled file was authenticated and its SHA-256 checked when it was fetched,
  and it is renamed into place whole; an archived file is never overwritten, so a name the
  archive held once always stands for the same bytes. A spool belongs to one recovery (it
  lives in the restored data directory) and so to one system.
- ``wal push``: a record ("archived with this SHA-256, as this object") is written durably only
  after the repository acknowledged the object, and serves only the very bytes it names, for
  the system whose object it names; other bytes go to the repository, which refuses them.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import stat
import time
from pathlib import Path

from backup.walnames import PushResult, WalFile, check_name, is_segment
from dc.errors import N_, UsageError, os_reason

_RECORD = ".archived"
#: held (exclusively) by the running ``wal push-daemon`` of a spool, released by the kernel when it dies
DAEMON_LOCK = ".daemon.lock"


def exposed(spool: Path) -> str | None:
    """Why ``spool`` cannot be trusted — another user owns it, or group or others can write
    it — or None (private, or absent). What is in it answers PostgreSQL with authority, so it
    is held to what deployment.md asks of it: a directory only this account writes."""
    try:
        info = os.stat(spool)
    except OSError:
        return None
    if info.st_uid not in (os.geteuid(), 0):
        return f"the spool {spool} belongs to another user (uid {info.st_uid})"
    if info.st_mode & 0o022:
        return f"the spool {spool} can be written by group or others (mode {stat.S_IMODE(info.st_mode):04o})"
    return None


def from_spool(system: str, name: str, target: Path, spool: Path) -> WalFile | None:
    """The spooled ``name`` moved to ``target``, or None when the spool does not hold it.

    Either way, the segments before ``name`` on its timeline leave the spool: replay moves
    forward, so nothing asks for them again (and should something, the archive answers).
    """
    check_name(name)
    if not is_segment(name) or exposed(spool):
        return None  # an untrusted spool: the archive answers (a failing get would end recovery early)
    cached = spool / name
    _prune_before(spool, name)
    if cached.is_symlink():
        return None  # only what a fetch renamed into place: a link would hand over whatever it points at
    try:
        data = cached.read_bytes()
    except OSError:
        return None
    try:
        os.replace(cached, target)
    except OSError as exc:
        raise UsageError(N_("cannot write {target}: {strerror}"), target=target, strerror=os_reason(exc)) from None
    return WalFile(system, name, len(data), hashlib.sha256(data).hexdigest(), "", f"{spool}/{name}")


def _prune_before(spool: Path, name: str) -> None:
    """Remove spooled segments of ``name``'s timeline that sort before it (fetched too late)."""
    try:
        stale = [n for n in os.listdir(spool) if is_segment(n) and n[:8] == name[:8] and n < name]
    except OSError:
        return
    for old in stale:
        (spool / old).unlink(missing_ok=True)


def _record(spool: Path, name: str) -> Path:
    return spool / f"{name}{_RECORD}"


def from_record(system: str, path: Path, spool: Path) -> PushResult | None:
    """``path`` acknowledged from the spool's record of it, or None (no record, other bytes,
    or a record of another system's object)."""
    name = check_name(path.name)
    if problem := exposed(spool):
        raise UsageError(N_("{problem}: refused (chmod 700 it, owned by this account)"), problem=problem)
    record = _record(spool, name)
    try:
        digest, key = record.read_text(encoding="ascii").split()
        data = path.read_bytes()
    except (OSError, ValueError):
        return None
    if not key.startswith(f"wal/{system}/{name}/") or hashlib.sha256(data).hexdigest() != digest:
        return None
    record.unlink(missing_ok=True)
    return PushResult(system, name, len(data), 0, True, key, digest)


def daemon_alive(spool: Path) -> bool:
    """Whether a ``wal push-daemon`` holds ``spool``'s lock: a SIGKILLed daemon holds nothing."""
    try:
        fd = os.open(spool / DAEMON_LOCK, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def await_record(system: str, path: Path, spool: Path, wait: float) -> PushResult | None:
    """``path`` acknowledged from its record, waiting up to ``wait`` seconds while a daemon runs:
    PostgreSQL asks the moment it marks a segment ready, a poll interval before the daemon
    has pushed it. None when the daemon is absent, died, or stayed behind: the caller pushes."""
    deadline = time.monotonic() + wait
    while (result := from_record(system, path, spool)) is None:
        if time.monotonic() >= deadline or not daemon_alive(spool):
            return from_record(system, path, spool)
        time.sleep(0.02)
    return result


def write_record(spool: Path, name: str, digest: str, key: str) -> None:
    """Record durably that ``name`` with SHA-256 ``digest`` is archived as ``key`` (temporary
    name, fsync, rename, fsync of the directory): only after the repository acknowledged it."""
    record = _record(spool, name)
    tmp = record.with_name(f".{record.name}.{os.getpid()}")
    with tmp.open("w", encoding="ascii") as out:
        out.write(f"{digest} {key}\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, record)
    fd = os.open(spool, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
