"""Retry, rate limit and metrics wrappers, with fake clocks and a scripted flaky backend.

The flaky backend is the one test double here: failures at exact calls cannot be produced on
demand by a real server (the real ones run in tests/storage/test_sftp.py and test_transfer.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest

from dc.errors import AuthError, UsageError
from storage.backend import Capabilities, ObjectInfo
from storage.capabilities import NameChecking, ObjectLocking, Versioned, as_capability, object_locking
from storage.errors import AccessDenied, ObjectNotFound, PermanentStorageError, StorageError, Unreachable
from storage.local import LocalBackend
from storage.metered import MeteredBackend
from storage.ratelimit import RateLimitedBackend, TokenBucket, parse_rate
from storage.retry import RetryingBackend, RetryPolicy, backoff_delays, with_retries


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Flaky:
    """Fails the first ``failures`` calls of every operation with ``error``."""

    url = "flaky://"
    capabilities = Capabilities()

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0
        self.saved: dict[str, bytes] = {}

    def _maybe_fail(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error

    def save(self, key: str, data: bytes, *, retain_until: datetime | None = None) -> None:
        self._maybe_fail()
        self.saved[key] = bytes(data)

    def save_new(self, key: str, data: bytes) -> bool:
        self._maybe_fail()
        return True

    def load(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        self._maybe_fail()
        return self.saved.get(key, b"data")

    def stat(self, key: str) -> ObjectInfo:
        self._maybe_fail()
        return ObjectInfo(key, 4, 0.0)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        self._maybe_fail()
        yield ObjectInfo("a", 1, 0.0)

    def remove(self, key: str) -> None:
        self._maybe_fail()

    def close(self) -> None:
        pass


class FlakyLocks(Flaky):
    """A flaky backend on storage with Object Lock."""

    capabilities = Capabilities(object_lock=True)

    def lock_until(self, key: str, version_id: str | None = None) -> datetime | None:
        self._maybe_fail()
        return None

    def extend_lock(self, key: str, until: datetime) -> None:
        self._maybe_fail()


def retrying(inner: Flaky, budget: float = 30.0) -> tuple[RetryingBackend, FakeClock]:
    clock = FakeClock()
    return with_retries(inner, RetryPolicy(budget=budget, sleep=clock.sleep, clock=clock)), clock


def test_backoff_doubles_up_to_the_cap() -> None:
    delays = backoff_delays(0.25, 2.0)
    assert [next(delays) for _ in range(6)] == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]


def test_transient_failures_are_retried_until_success() -> None:
    inner = Flaky(3, StorageError("S3 SlowDown"))
    backend, clock = retrying(inner)
    backend.save("k", b"v")
    assert inner.saved == {"k": b"v"}
    assert backend.retries == 3 and len(clock.sleeps) == 3
    assert clock.sleeps[0] <= clock.sleeps[-1] * 2  # growing delays (with jitter)


def test_retries_stop_at_the_time_budget() -> None:
    inner = Flaky(10**6, Unreachable("cannot reach S3 endpoint"))
    backend, clock = retrying(inner, budget=5.0)
    with pytest.raises(Unreachable):
        backend.load("k")
    assert clock.now <= 5.0
    assert inner.calls > 2


@pytest.mark.parametrize(
    "error",
    [
        ObjectNotFound("gone"),
        PermanentStorageError("range"),
        AccessDenied("locked"),
        AuthError("bad key"),
        UsageError("bad bucket"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_permanent_failures_are_not_retried(error: Exception) -> None:
    inner = Flaky(1, error)
    backend, clock = retrying(inner)
    with pytest.raises(type(error)):
        backend.stat("k")
    assert inner.calls == 1 and clock.sleeps == []


def test_save_new_is_retried_only_when_the_request_never_left() -> None:
    ambiguous = Flaky(1, StorageError("connection reset after sending"))
    backend, _ = retrying(ambiguous)
    with pytest.raises(StorageError):
        backend.save_new("locks/prune", b"x")
    unreachable = Flaky(1, Unreachable("connection refused"))
    backend, _ = retrying(unreachable)
    assert backend.save_new("locks/prune", b"x") is True


def test_listing_is_retried_whole() -> None:
    inner = Flaky(1, StorageError("timeout"))
    backend, _ = retrying(inner)
    assert [i.key for i in backend.list("")] == ["a"]
    assert inner.calls == 2


def test_a_capability_is_found_through_every_wrapper_and_its_calls_are_retried() -> None:
    inner = FlakyLocks(1, StorageError("timeout"))
    backend, clock = retrying(inner)
    outer = MeteredBackend(RateLimitedBackend(backend, TokenBucket(10**12)))
    locks = object_locking(outer)
    assert locks is backend and isinstance(locks, ObjectLocking)  # the retrying wrapper, not the raw storage
    assert locks.lock_until("a") is None and inner.calls == 2 and len(clock.sleeps) == 1
    assert as_capability(outer, FlakyLocks) is inner
    assert as_capability(outer, Versioned) is None and as_capability(outer, NameChecking) is None


def test_wrappers_never_claim_or_forward_what_the_storage_lacks() -> None:
    plain, _ = retrying(Flaky(0, StorageError("unused")))
    outer = MeteredBackend(plain)
    assert as_capability(outer, ObjectLocking) is None
    assert not hasattr(plain, "lock_until") and not hasattr(outer, "saved")  # nothing forwarded by name
    # a class that can lock, on storage that cannot (an S3 bucket without Object Lock)
    unlocked = FlakyLocks(0, StorageError("unused"))
    unlocked.capabilities = Capabilities(object_lock=False)
    assert as_capability(unlocked, ObjectLocking) is unlocked and object_locking(unlocked) is None


def test_token_bucket_holds_the_average_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1000.0, burst=1000.0, clock=clock, sleep=clock.sleep)
    for _ in range(10):
        bucket.take(500)
    # 5000 bytes at 1000 B/s with a 1000-byte burst: about 4 s of waiting
    assert 3.9 <= clock.now <= 4.1


def test_rate_limited_backend_charges_saved_and_loaded_bytes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock()
    backend = RateLimitedBackend(
        LocalBackend(tmp_path, create=True), TokenBucket(100.0, burst=100.0, clock=clock, sleep=clock.sleep)
    )
    backend.save("a", b"x" * 300)
    assert backend.load("a") == b"x" * 300
    assert 4.9 <= clock.now <= 5.1  # 600 bytes at 100 B/s minus the 100-byte burst


@pytest.mark.parametrize(
    ("text", "rate"), [("5000000", 5e6), ("5M", 5e6), ("500KiB", 512000), ("1.5m/s", 1.5e6), ("2Gi", 2 * 1024**3)]
)
def test_rates_parse(text: str, rate: float) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["", "fast", "-5", "0", "5 parsecs"])
def test_bad_rates_are_one_clear_error(text: str) -> None:
    with pytest.raises(UsageError, match="rate"):
        parse_rate(text)


def test_metered_backend_counts_operations_bytes_and_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    backend = MeteredBackend(LocalBackend(tmp_path / "repo", create=True))
    backend.save("a", b"12345")
    backend.save_new("b", b"123")
    assert backend.load("a", 1, 2) == b"23"
    with pytest.raises(ObjectNotFound):
        backend.load("missing")
    assert sorted(i.key for i in backend.list("")) == ["a", "b"]
    counters = backend.counters()
    assert counters.bytes_sent == 8
    assert counters.bytes_received == 2
    assert counters.operations["load"].calls == 2 and counters.operations["load"].errors == 1
    assert counters.calls("list") == 1 and counters.calls("remove") == 0
