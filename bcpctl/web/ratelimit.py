"""Token buckets per key (partner, client address): bursts allowed, a steady rate enforced.

Kept in memory: the limit protects this process (a partner's script gone wild during a
disaster, a password-guessing loop), and a restart only gives a client one fresh burst.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``per_minute`` requests per key, with a burst of the same size."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 10_000) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Spend one token: ``0.0`` when allowed, else the seconds until the next token."""
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self.max_keys:
                    self._forget_full(now)
                bucket = self._buckets[key] = _Bucket(self.capacity, now)
            bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have refilled (they carry no state) so memory stays bounded."""
        for key, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.updated) * self.rate >= self.capacity:
                del self._buckets[key]
        if len(self._buckets) >= self.max_keys:
            self._buckets.clear()
