"""replication/transfer.py's two stages: objects are checked ahead of the uploads, and stopping never hangs.

Checking (hashing against the name) and sending overlap: while an upload is on the wire the
next objects are already read and checked, so the target never waits for a hash pass. The
window is bounded, taken in order, and released on every path, so an error, a cancel or a
single upload thread cannot leave a stage waiting for the other.
"""

from __future__ import annotations

import hashlib
import random
import threading
from pathlib import Path

import pytest

from replication.transfer import Transfer
from storage.backend import ObjectInfo
from storage.errors import Unreachable
from storage.local import LocalBackend

WAIT = 20.0  # seconds: far beyond what a working pipeline needs, short enough to fail rather than hang


def _packs(backend: LocalBackend, count: int, *, seed: int = 3) -> list[ObjectInfo]:
    rng = random.Random(seed)
    for n in range(count):
        body = rng.randbytes(4096 + n)  # distinct sizes: the order (largest first) is known
        name = hashlib.sha256(body).hexdigest()
        backend.save(f"data/{name[:2]}/{name}", body)
    return sorted(backend.list("data/"), key=lambda i: -i.size)


class _HeldTarget(LocalBackend):
    """A directory whose first upload waits until the test lets it go (a slow link, held on purpose)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, create=True)
        self.release = threading.Event()
        self.first: str | None = None
        self._lock = threading.Lock()

    def save(self, key: str, data, *, retain_until=None) -> None:  # type: ignore[no-untyped-def, override]
        with self._lock:
            first = self.first is None
            if first:
                self.first = key
        if first:
            assert self.release.wait(WAIT), "the first upload was never released"
        super().save(key, data, retain_until=retain_until)


def _run(transfer: Transfer, infos: list[ObjectInfo]):  # type: ignore[no-untyped-def]
    """``transfer.copy`` in a thread, so a hang fails the test instead of stalling the suite."""
    done: dict[str, object] = {}

    def work() -> None:
        try:
            done["outcome"] = transfer.copy(infos)
        except BaseException as exc:  # handed to the test thread
            done["error"] = exc

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread, done


@pytest.mark.parametrize("jobs", [1, 3])
def test_the_next_objects_are_checked_while_an_upload_is_on_the_wire(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int
) -> None:
    import replication.transfer as transfer_module

    source = LocalBackend(tmp_path / "primary", create=True)
    infos = _packs(source, 8)
    target = _HeldTarget(tmp_path / "offsite")
    checked: list[int] = []
    second_checked = threading.Event()
    real = transfer_module.sha256_of

    def counting(body):  # type: ignore[no-untyped-def]
        found = real(body)
        checked.append(len(body))
        if len(checked) >= 2:
            second_checked.set()
        return found

    monkeypatch.setattr(transfer_module, "sha256_of", counting)
    thread, done = _run(Transfer(source, target, jobs=jobs, hashers=1), infos)
    try:
        # the first upload is held: only a pipeline checks another object meanwhile
        assert second_checked.wait(WAIT), "no object was checked while the first upload was on the wire"
    finally:
        target.release.set()
        thread.join(WAIT)
    assert not thread.is_alive()
    outcome = done["outcome"]
    assert not outcome.errors  # type: ignore[attr-defined]
    assert sorted(outcome.copied) == sorted(i.key for i in infos)  # type: ignore[attr-defined]
    for info in infos:
        assert (target.root / info.key).read_bytes() == (source.root / info.key).read_bytes()


@pytest.mark.parametrize(("jobs", "hashers"), [(1, 1), (1, 3), (2, 1), (4, 2)])
def test_a_damaged_object_fails_alone_without_anything_left_waiting(tmp_path: Path, jobs: int, hashers: int) -> None:
    source = LocalBackend(tmp_path / "primary", create=True)
    infos = _packs(source, 12)
    damaged = infos[1]
    raw = bytearray((source.root / damaged.key).read_bytes())
    raw[10] ^= 0xFF
    (source.root / damaged.key).write_bytes(bytes(raw))
    target = LocalBackend(tmp_path / "offsite", create=True)
    thread, done = _run(Transfer(source, target, jobs=jobs, hashers=hashers), infos)
    thread.join(WAIT)
    assert not thread.is_alive(), "the transfer hung after a failed check"
    outcome = done["outcome"]
    assert list(outcome.errors) == [damaged.key] and "damaged there" in outcome.errors[damaged.key]  # type: ignore[attr-defined]
    assert not (target.root / damaged.key).exists()
    # one damaged object never locks out the rest: every other one is copied, intact
    assert sorted(outcome.copied) == sorted(i.key for i in infos if i is not damaged)  # type: ignore[attr-defined]
    for key in outcome.copied:  # type: ignore[attr-defined]
        assert (target.root / key).read_bytes() == (source.root / key).read_bytes()


class _FailingTarget(LocalBackend):
    """A directory whose second upload finds the endpoint gone."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, create=True)
        self.saves = 0
        self._lock = threading.Lock()

    def save(self, key: str, data, *, retain_until=None) -> None:  # type: ignore[no-untyped-def, override]
        with self._lock:
            self.saves += 1
            gone = self.saves >= 2
        if gone:
            raise Unreachable("{key}: the target stopped answering", key=key)
        super().save(key, data, retain_until=retain_until)


@pytest.mark.parametrize(("jobs", "hashers"), [(1, 1), (1, 3), (2, 1), (4, 2)])
def test_a_failing_target_stops_the_transfer_without_anything_left_waiting(
    tmp_path: Path, jobs: int, hashers: int
) -> None:
    source = LocalBackend(tmp_path / "primary", create=True)
    infos = _packs(source, 12)
    target = _FailingTarget(tmp_path / "offsite")
    thread, done = _run(Transfer(source, target, jobs=jobs, hashers=hashers), infos)
    thread.join(WAIT)
    assert not thread.is_alive(), "the transfer hung after a failed upload"
    outcome = done["outcome"]
    assert outcome.errors  # type: ignore[attr-defined]
    # the first failure of the endpoint stops the rest: the tail was not started
    assert target.saves < len(infos)
    for key in outcome.copied:  # type: ignore[attr-defined]
        assert (target.root / key).read_bytes() == (source.root / key).read_bytes()


def test_a_cancel_during_an_upload_sends_nothing_more_and_returns(tmp_path: Path) -> None:
    source = LocalBackend(tmp_path / "primary", create=True)
    infos = _packs(source, 10)
    target = _HeldTarget(tmp_path / "offsite")
    cancel = threading.Event()
    thread, done = _run(Transfer(source, target, jobs=1, hashers=2, cancel=cancel), infos)
    for _ in range(int(WAIT * 10)):
        if target.first is not None:
            break
        threading.Event().wait(0.1)
    cancel.set()
    target.release.set()
    thread.join(WAIT)
    assert not thread.is_alive(), "the transfer hung after a cancel"
    outcome = done["outcome"]
    assert outcome.copied == [target.first]  # type: ignore[attr-defined]  # the object in flight finished
    assert not outcome.errors  # type: ignore[attr-defined]
