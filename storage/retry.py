"""Retrying transient storage failures with exponential backoff and jitter.

A network blip or an S3 ``SlowDown`` must not fail a replication that has hours of work
left; a missing object, a refused lock, bad credentials or a bad request must fail at once.
Retries stop at a time budget (``$BCPCTL_RETRY_SECONDS``, default 60 s) so that a dead
endpoint turns into one clear error within a bounded time, and the next run resumes.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TypeVar

from storage.backend import Backend, ObjectInfo, ObjectVersion
from storage.errors import ObjectNotFound, PermanentStorageError, StorageError, Unreachable
from storage.wrapper import BackendWrapper

BUDGET_ENV = "BCPCTL_RETRY_SECONDS"
DEFAULT_BUDGET = 60.0

T = TypeVar("T")


def backoff_delays(first: float, limit: float, factor: float = 2.0) -> Iterator[float]:
    """``first, first*factor, ...`` capped at ``limit`` (before jitter)."""
    delay = first
    while True:
        yield delay
        delay = min(delay * factor, limit)


def retryable(exc: BaseException) -> bool:
    return isinstance(exc, StorageError) and not isinstance(exc, ObjectNotFound | PermanentStorageError)


def budget_from_env() -> float:
    try:
        return max(0.0, float(os.environ.get(BUDGET_ENV, DEFAULT_BUDGET)))
    except ValueError:
        return DEFAULT_BUDGET


class RetryingBackend(BackendWrapper):
    def __init__(
        self,
        inner: Backend,
        *,
        budget: float | None = None,
        first_delay: float = 0.25,
        max_delay: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(inner)
        self.budget = budget_from_env() if budget is None else budget
        self.first_delay = first_delay
        self.max_delay = max_delay
        self._sleep = sleep
        self._clock = clock
        self.retries = 0

    def _run(self, fn: Callable[[], T], *, only_unreachable: bool = False) -> T:
        deadline = self._clock() + self.budget
        delays = backoff_delays(self.first_delay, self.max_delay)
        while True:
            try:
                return fn()
            except StorageError as exc:
                if not retryable(exc) or (only_unreachable and not isinstance(exc, Unreachable)):
                    raise
                delay = next(delays) * random.uniform(0.5, 1.0)
                if self._clock() + delay > deadline:
                    raise
                self.retries += 1
                self._sleep(delay)

    def save(self, key: str, data: bytes | bytearray | memoryview, *, retain_until: datetime | None = None) -> None:
        self._run(lambda: self.inner.save(key, data, retain_until=retain_until))

    def save_new(self, key: str, data: bytes) -> bool:
        # Only a connection that never reached the server is safe to retry: after an ambiguous
        # failure a second attempt would report "exists" for the object the first one created.
        return self._run(lambda: self.inner.save_new(key, data), only_unreachable=True)

    def load(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        return self._run(lambda: self.inner.load(key, offset, length))

    def stat(self, key: str) -> ObjectInfo:
        return self._run(lambda: self.inner.stat(key))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        # A listing cut off midway cannot resume where it stopped; retry it whole.
        return iter(self._run(lambda: list(self.inner.list(prefix))))

    def remove(self, key: str) -> None:
        self._run(lambda: self.inner.remove(key))

    def lock_until(self, key: str, version_id: str | None = None) -> datetime | None:
        if version_id is None:
            return self._run(lambda: self.inner.lock_until(key))  # type: ignore[attr-defined]
        return self._run(lambda: self.inner.lock_until(key, version_id))  # type: ignore[attr-defined]

    def extend_lock(self, key: str, until: datetime) -> None:
        self._run(lambda: self.inner.extend_lock(key, until))  # type: ignore[attr-defined]

    # The version history (storage.backend.VersionedBackend) where the storage keeps one;
    # ``capabilities.versions`` of the inner backend says whether it does.

    def list_versions(self, prefix: str = "") -> Iterator[ObjectVersion]:
        return iter(self._run(lambda: list(self.inner.list_versions(prefix))))  # type: ignore[attr-defined]

    def load_version(self, key: str, version_id: str, offset: int = 0, length: int | None = None) -> bytes:
        return self._run(lambda: self.inner.load_version(key, version_id, offset, length))  # type: ignore[attr-defined]

    def restore_version(self, key: str, version_id: str, *, retain_until: datetime | None = None) -> None:
        # Copying a version is idempotent: a second attempt after an ambiguous failure only adds
        # another current version with the same bytes.
        self._run(lambda: self.inner.restore_version(key, version_id, retain_until=retain_until))  # type: ignore[attr-defined]
