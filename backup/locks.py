"""Repository locks: who holds one, until when, and when its holder is provably gone.

Backups never lock (DESIGN "backup/"); only prune takes ``locks/prune``. A lock is a
create-if-absent object naming its holder — host, machine id, boot id, pid and the pid's
start time — with a TTL that the holder renews while it works. The next process that finds
the lock releases it, and says so, when

* the TTL has passed since the last renewal, measured by the storage's own clock (a probe
  object's modification time, so a client with a wrong clock cannot expire a live lock), or
* the holder ran on this machine and its process is gone: the pid is not alive, the pid now
  belongs to another process (start time differs), or the machine rebooted since (boot id).

A lock held from another machine cannot be checked, so only its TTL — or ``bcpctl unlock
--force``, once an operator knows that machine's prune is dead — releases it. A lock held by
a live process on this machine is never removed, forced or not.

The rule itself (:func:`judge`) is a pure function of the lock, its age and this machine,
tested without processes or clocks.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from backup.errors import RepositoryError
from backup.objectsize import OversizedObject, load_whole
from dc.errors import N_, Message
from storage.backend import Backend
from storage.errors import ObjectNotFound, StorageError

LOCKS_PREFIX = "locks/"
_PROBE_PREFIX = LOCKS_PREFIX + "clock-"
#: a probe left by a killed process is junk after this long
_PROBE_STALE_SECONDS = 600.0


@dataclass(frozen=True)
class Machine:
    """What tells this machine (and this boot of it) from another that shares a hostname."""

    host: str
    machine_id: str = ""
    boot_id: str = ""

    def same_machine(self, other: Machine) -> bool:
        if self.host != other.host:
            return False
        return not (self.machine_id and other.machine_id and self.machine_id != other.machine_id)


@dataclass(frozen=True)
class LockRecord:
    """A lock as found in storage. ``machine`` is ``None`` when the body cannot be read."""

    name: str
    machine: Machine | None
    pid: int = 0
    pid_start: int | None = None
    started: str = ""
    ttl: float = 0.0
    token: str = ""


@dataclass(frozen=True)
class Verdict:
    #: "live": its process runs on this machine; "stale": provably gone or expired;
    #: "foreign": held from another machine, not expired; "unreadable": body damaged, not expired
    state: str
    reason: str


def _read_first_line(path: str) -> str:
    try:
        return Path(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""


def this_machine() -> Machine:
    return Machine(
        socket.gethostname(),
        _read_first_line("/etc/machine-id"),
        _read_first_line("/proc/sys/kernel/random/boot_id"),
    )


def process_start(pid: int) -> int | None:
    """The pid's start time in clock ticks since boot (``/proc/PID/stat`` field 22), if known."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    try:  # the command name (field 2) may hold spaces and parentheses: count from the last ')'
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None


def process_alive(pid: int, start: int | None) -> bool:
    """Whether ``pid`` runs on this machine and (when ``start`` is known) is still the same process."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: alive
    if start is not None:
        now_start = process_start(pid)
        if now_start is not None and now_start != start:
            return False  # the pid was reused
    return True


def judge(record: LockRecord, *, age: float, here: Machine, alive: Callable[[int, int | None], bool]) -> Verdict:
    """Live, stale, foreign or unreadable — and why, in words for the operator."""
    if record.machine is None:
        if record.ttl and age > record.ttl:
            return Verdict("stale", f"unreadable and not renewed for {age:.0f} s")
        return Verdict("unreadable", "unreadable (no holder can be named)")
    holder = f"{record.machine.host} pid {record.pid}"
    if age > record.ttl:
        return Verdict("stale", f"held by {holder}, not renewed for {age:.0f} s (TTL {record.ttl:.0f} s)")
    if not here.same_machine(record.machine):
        return Verdict("foreign", f"held by {holder} on another machine since {record.started or 'unknown'}")
    if record.machine.boot_id and here.boot_id and record.machine.boot_id != here.boot_id:
        return Verdict("stale", f"held by {holder}, which ran before this machine rebooted")
    if not alive(record.pid, record.pid_start):
        return Verdict("stale", f"held by {holder}, which is no longer running")
    return Verdict("live", f"held by {holder}, running since {record.started or 'unknown'}")


def parse_lock(name: str, raw: bytes) -> LockRecord:
    """A lock body; an unreadable one still has a name (and is released only by TTL or force)."""
    try:
        doc = orjson.loads(raw)
        if not isinstance(doc, dict) or not isinstance(doc.get("host"), str):
            raise ValueError("not a lock")
        pid, start, ttl = doc.get("pid"), doc.get("pid_start"), doc.get("ttl", _LEGACY_TTL)
        if type(pid) is not int or (start is not None and type(start) is not int):
            raise ValueError("bad pid")
        if not isinstance(ttl, int | float) or not 0 < ttl <= _LEGACY_TTL:
            raise ValueError("bad ttl")
        machine = Machine(doc["host"], str(doc.get("machine_id") or ""), str(doc.get("boot_id") or ""))
        return LockRecord(
            name, machine, pid, start, str(doc.get("started") or ""), float(ttl), str(doc.get("token", ""))
        )
    except (ValueError, TypeError, orjson.JSONDecodeError):
        return LockRecord(name, None, ttl=_LEGACY_TTL)


#: locks written before TTLs were recorded (and unreadable ones) expire after prune's old fixed TTL
_LEGACY_TTL = 6 * 3600.0


def storage_now(backend: Backend) -> float:
    """The storage's clock: the modification time of an object written now."""
    probe = f"{_PROBE_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
    backend.save(probe, b"")
    try:
        return backend.stat(probe).mtime
    finally:
        backend.remove(probe)


@dataclass
class LockStatus:
    name: str
    state: str
    reason: str
    host: str | None
    pid: int | None
    started: str | None
    age_seconds: float
    removed: bool = False


def _load_lock(backend: Backend, key: str, size: int | None = None) -> bytes:
    """A lock's body; one larger than any lock is judged like an unreadable one, never read whole."""
    try:
        return load_whole(backend, key, "lock", size=size)
    except OversizedObject:
        return b""


def _status(backend: Backend, key: str, now: float, here: Machine) -> tuple[LockStatus, LockRecord] | None:
    try:
        info = backend.stat(key)
        record = parse_lock(key.removeprefix(LOCKS_PREFIX), _load_lock(backend, key, info.size))
    except ObjectNotFound:
        return None  # released while we looked
    age = max(0.0, now - info.mtime)
    verdict = judge(record, age=age, here=here, alive=process_alive)
    host = record.machine.host if record.machine else None
    status = LockStatus(
        record.name, verdict.state, verdict.reason, host, record.pid or None, record.started or None, round(age, 1)
    )
    return status, record


def held_by_someone(backend: Backend, key: str) -> bool:
    """Whether the lock ``key`` is held now by a process not provably gone (live or foreign)."""
    found = _status(backend, key, storage_now(backend), this_machine())
    return found is not None and found[0].state != "stale"


@dataclass
class UnlockReport:
    locks: list[LockStatus] = field(default_factory=list)
    probes_removed: int = 0

    @property
    def held(self) -> list[LockStatus]:
        return [lock for lock in self.locks if not lock.removed]


def unlock(backend: Backend, *, force: bool = False) -> UnlockReport:
    """Remove every stale lock (and, with ``force``, foreign and unreadable ones); keep live ones."""
    report = UnlockReport()
    now = storage_now(backend)
    here = this_machine()
    for info in sorted(backend.list(LOCKS_PREFIX), key=lambda i: i.key):
        if info.key.startswith(_PROBE_PREFIX):
            if now - info.mtime > _PROBE_STALE_SECONDS:
                backend.remove(info.key)
                report.probes_removed += 1
            continue
        found = _status(backend, info.key, now, here)
        if found is None:
            continue
        status, _record = found
        if status.state == "stale" or (force and status.state in ("foreign", "unreadable")):
            backend.remove(info.key)
            status.removed = True
        report.locks.append(status)
    return report


class RepositoryLock:
    """An exclusive, renewed lock ``locks/<name>``; a stale one found in the way is released.

    Use as a context manager. ``storage_now`` is the storage clock when it was taken; ``notes``
    say what stale lock was released on the way in. A thread renews the lock every ``ttl / 4``;
    :meth:`ensure_held` refuses to go on once another process has taken it over.
    """

    def __init__(self, backend: Backend, name: str, *, ttl: float) -> None:
        self.backend = backend
        self.key = LOCKS_PREFIX + name
        self.name = name
        self.ttl = ttl
        self.token = secrets.token_hex(16)
        self.storage_now = 0.0
        self.notes: list[str] = []
        self._stop = threading.Event()
        self._lost = False
        self._thread: threading.Thread | None = None
        self._raw = b""

    def _body(self) -> bytes:
        """Renewals rewrite the same body: only the object's modification time moves."""
        if self._raw:
            return self._raw
        machine = this_machine()
        doc: dict[str, Any] = {
            "version": 1,
            "host": machine.host,
            "machine_id": machine.machine_id,
            "boot_id": machine.boot_id,
            "pid": os.getpid(),
            "pid_start": process_start(os.getpid()),
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "ttl": self.ttl,
            "token": self.token,
        }
        self._raw = orjson.dumps(doc)
        return self._raw

    def __enter__(self) -> RepositoryLock:
        body = self._body()
        if not self.backend.save_new(self.key, body):
            now = storage_now(self.backend)
            found = _status(self.backend, self.key, now, this_machine())
            if found is not None:
                status, _record = found
                if status.state != "stale":
                    if status.state in ("foreign", "unreadable"):
                        raise RepositoryError(
                            N_(
                                "the {name} lock is {reason}; try again later "
                                "(bcpctl unlock --force removes it once that machine's prune is gone)"
                            ),
                            name=self.name,
                            reason=status.reason,
                        )
                    raise RepositoryError(
                        N_("the {name} lock is {reason}; try again later"), name=self.name, reason=status.reason
                    )
                self.backend.remove(self.key)
                self.notes.append(
                    Message(N_("released a stale {name} lock: {reason}"), name=self.name, reason=status.reason)
                )
            if not self.backend.save_new(self.key, body):
                raise RepositoryError(
                    N_("another process took the {name} lock at the same moment; try again later"), name=self.name
                )
        self.storage_now = self.backend.stat(self.key).mtime
        self._thread = threading.Thread(target=self._renew_loop, name=f"lock-{self.name}", daemon=True)
        self._thread.start()
        return self

    def _mine(self) -> bool:
        try:
            return parse_lock(self.name, _load_lock(self.backend, self.key)).token == self.token
        except ObjectNotFound:
            return False

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl / 4):
            try:
                if not self._mine():
                    self._lost = True
                    return
                self.backend.save(self.key, self._body())
            except Exception:  # a storage blip: the next round tries again, the TTL has room for three
                continue

    def ensure_held(self) -> None:
        """Refuse to continue (before deleting anything) once the lock is no longer ours."""
        if self._lost or not self._mine():
            self._lost = True
            raise RepositoryError(
                N_("the {name} lock was taken over by another process; stopped before deleting"), name=self.name
            )

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        # A lock that cannot be removed now expires by its TTL; never mask the caller's own error.
        with contextlib.suppress(StorageError):
            if self._mine():
                self.backend.remove(self.key)
