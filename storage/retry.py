"""Retrying transient storage failures with exponential backoff and jitter.

A network blip or an S3 ``SlowDown`` must not fail a replication that has hours of work
left; a missing object, a refused lock, bad credentials or a bad request must fail at once.
Retries stop at a time budget (``$BCPCTL_RETRY_SECONDS``, default 60 s) so that a dead
endpoint turns into one clear error within a bounded time, and the next run resumes.

Object Lock and version-history calls are storage requests like any other: where the wrapped
backend has those capabilities (:mod:`storage.capabilities`), :func:`with_retries` returns a
wrapper that has them too and retries them, so :func:`~storage.capabilities.as_capability`
finds the retrying one first.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from storage.backend import Backend, ObjectInfo, ObjectVersion
from storage.capabilities import ObjectLocking, Versioned, as_capability
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


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how often to retry; the clock and sleep are parameters so tests need not wait."""

    budget: float = field(default_factory=budget_from_env)
    first_delay: float = 0.25
    max_delay: float = 8.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic


class RetryingBackend(BackendWrapper):
    def __init__(self, inner: Backend, policy: RetryPolicy | None = None) -> None:
        super().__init__(inner)
        self.policy = policy or RetryPolicy()
        self.retries = 0

    def _run(self, fn: Callable[[], T], *, only_unreachable: bool = False) -> T:
        policy = self.policy
        deadline = policy.clock() + policy.budget
        delays = backoff_delays(policy.first_delay, policy.max_delay)
        while True:
            try:
                return fn()
            except StorageError as exc:
                if not retryable(exc) or (only_unreachable and not isinstance(exc, Unreachable)):
                    raise
                delay = next(delays) * random.uniform(0.5, 1.0)
                if policy.clock() + delay > deadline:
                    raise
                self.retries += 1
                policy.sleep(delay)

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


class _RetryingLocks(RetryingBackend):
    """Retries the wrapped backend's :class:`~storage.capabilities.ObjectLocking` calls too."""

    def __init__(self, inner: Backend, policy: RetryPolicy | None = None) -> None:
        super().__init__(inner, policy)
        locks = as_capability(inner, ObjectLocking)
        assert locks is not None, "with_retries chooses this class only over a backend that locks"
        self._locks = locks

    def lock_until(self, key: str, version_id: str | None = None) -> datetime | None:
        return self._run(lambda: self._locks.lock_until(key, version_id))

    def extend_lock(self, key: str, until: datetime) -> None:
        self._run(lambda: self._locks.extend_lock(key, until))


class _RetryingHistory(RetryingBackend):
    """Retries the wrapped backend's :class:`~storage.capabilities.Versioned` calls too."""

    def __init__(self, inner: Backend, policy: RetryPolicy | None = None) -> None:
        super().__init__(inner, policy)
        history = as_capability(inner, Versioned)
        assert history is not None, "with_retries chooses this class only over a backend with versions"
        self._history = history

    def list_versions(self, prefix: str = "") -> Iterator[ObjectVersion]:
        return iter(self._run(lambda: list(self._history.list_versions(prefix))))

    def load_version(self, key: str, version_id: str, offset: int = 0, length: int | None = None) -> bytes:
        return self._run(lambda: self._history.load_version(key, version_id, offset, length))

    def restore_version(self, key: str, version_id: str, *, retain_until: datetime | None = None) -> None:
        # Copying a version is idempotent: a second attempt after an ambiguous failure only adds
        # another current version with the same bytes.
        self._run(lambda: self._history.restore_version(key, version_id, retain_until=retain_until))


class _RetryingLocksAndHistory(_RetryingLocks, _RetryingHistory):
    pass


def with_retries(inner: Backend, policy: RetryPolicy | None = None) -> RetryingBackend:
    """``inner`` behind retries, with the Object Lock and version-history capabilities it has, retried."""
    locks = as_capability(inner, ObjectLocking) is not None
    history = as_capability(inner, Versioned) is not None
    if locks and history:
        return _RetryingLocksAndHistory(inner, policy)
    if locks:
        return _RetryingLocks(inner, policy)
    if history:
        return _RetryingHistory(inner, policy)
    return RetryingBackend(inner, policy)
