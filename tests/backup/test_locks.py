"""Repository locks: the stale rule as a pure function, and a real lock renewed, lost and released."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import orjson
import pytest

from backup.errors import RepositoryError
from backup.locks import (
    LockRecord,
    Machine,
    RepositoryLock,
    judge,
    parse_lock,
    process_alive,
    process_start,
    storage_now,
    this_machine,
    unlock,
)
from storage.local import LocalBackend

HERE = Machine("ctl01", "m-1", "boot-2")


def _never(_pid: int, _start: int | None) -> bool:
    return False


def _always(_pid: int, _start: int | None) -> bool:
    return True


def record(machine: Machine | None = HERE, ttl: float = 1800.0) -> LockRecord:
    return LockRecord("prune", machine, 4242, 777, "2026-11-28T03:00:00+00:00", ttl, "t")


@pytest.mark.parametrize(
    ("lock", "age", "alive", "state"),
    [
        (record(), 10, _always, "live"),
        (record(), 10, _never, "stale"),  # same machine, process gone
        (record(Machine("ctl01", "m-1", "boot-1")), 10, _always, "stale"),  # rebooted since
        (record(), 1801, _always, "stale"),  # not renewed within its TTL
        (record(Machine("ctl02", "m-9", "boot-9")), 10, _never, "foreign"),  # cannot check another machine
        (record(Machine("ctl02", "m-9", "boot-9")), 1801, _never, "stale"),
        (record(Machine("ctl01", "m-OTHER", "boot-9")), 10, _never, "foreign"),  # same name, other machine
        (record(Machine("ctl01", "", "")), 10, _never, "stale"),  # an old body without ids: the hostname decides
        (record(None, ttl=6 * 3600), 10, _never, "unreadable"),
        (record(None, ttl=6 * 3600), 6 * 3600 + 1, _never, "stale"),
    ],
)
def test_judge(lock: LockRecord, age: float, alive, state: str) -> None:  # type: ignore[no-untyped-def]
    verdict = judge(lock, age=age, here=HERE, alive=alive)
    assert verdict.state == state
    if lock.machine is not None:
        assert lock.machine.host in verdict.reason and "4242" in verdict.reason


def test_parse_lock_reads_the_old_body_and_refuses_junk() -> None:
    old = parse_lock("prune", orjson.dumps({"host": "ctl01", "pid": 12}))
    assert old.machine == Machine("ctl01") and old.pid == 12 and old.ttl == 6 * 3600
    for junk in (b"", b"{}", b"[]", b'{"host": "x", "pid": "12"}', b'{"host": "x", "pid": 1, "ttl": -5}', b"\xff"):
        assert parse_lock("prune", junk).machine is None


def test_process_liveness_sees_a_reused_pid() -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        start = process_start(child.pid)
        assert start is not None and process_alive(child.pid, start)
        assert not process_alive(child.pid, start + 1), "a different start time is another process"
    finally:
        child.kill()
        child.wait()
    assert not process_alive(child.pid, start)


def lock_body(pid: int, *, machine: Machine | None = None, ttl: float = 1800.0, token: str = "other") -> bytes:
    """A lock file as another process of ``machine`` would have written it."""
    machine = machine or this_machine()
    return orjson.dumps(
        {
            "version": 1,
            "host": machine.host,
            "machine_id": machine.machine_id,
            "boot_id": machine.boot_id,
            "pid": pid,
            "pid_start": process_start(pid),
            "started": "2026-11-28T03:00:00+00:00",
            "ttl": ttl,
            "token": token,
        }
    )


def test_a_lock_is_renewed_while_held_and_removed_after(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path, create=True)
    # A TTL of a second: a shorter one was a few tenths from failing when CI's box paused the renewer.
    with RepositoryLock(backend, "prune", ttl=1.0) as lock:
        time.sleep(3.0)  # three TTLs: only renewals keep it fresh
        age = storage_now(backend) - backend.stat("locks/prune").mtime
        assert age < 1.0
        lock.ensure_held()
        with pytest.raises(RepositoryError, match=r"prune lock is held by .* running since"):
            RepositoryLock(backend, "prune", ttl=1.0).__enter__()
    assert list(backend.list("locks/")) == []


def test_a_lock_taken_over_stops_its_old_holder_before_it_deletes(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path, create=True)
    with RepositoryLock(backend, "prune", ttl=60) as lock:
        backend.save("locks/prune", lock_body(os.getpid()))  # another process's token now
        with pytest.raises(RepositoryError, match="taken over"):
            lock.ensure_held()
    assert parse_lock("prune", backend.load("locks/prune")).token == "other", "never remove another holder's lock"


def test_a_dead_holder_on_this_machine_is_released_at_once(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path, create=True)
    child = subprocess.Popen(["true"])
    child.wait()
    backend.save("locks/prune", lock_body(child.pid))
    with RepositoryLock(backend, "prune", ttl=60) as lock:
        assert lock.notes and "no longer running" in lock.notes[0] and str(child.pid) in lock.notes[0]


def test_unlock_removes_stale_keeps_live_and_foreign_unless_forced(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path, create=True)
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        backend.save("locks/prune", lock_body(sleeper.pid))
        backend.save("locks/other", lock_body(1, machine=Machine("far-away", "m-x", "b-x")))
        backend.save("locks/clock-1-dead", b"")
        os.utime(tmp_path / "locks" / "clock-1-dead", (time.time() - 3600, time.time() - 3600))
        report = unlock(backend)
        assert {(s.name, s.state, s.removed) for s in report.locks} == {
            ("prune", "live", False),
            ("other", "foreign", False),
        }
        assert report.probes_removed == 1
        forced = unlock(backend, force=True)
        assert {(s.name, s.removed) for s in forced.locks} == {("prune", False), ("other", True)}
    finally:
        sleeper.kill()
        sleeper.wait()
    assert [(s.name, s.state, s.removed) for s in unlock(backend).locks] == [("prune", "stale", True)]
    assert list(backend.list("locks/")) == []
