"""A bandwidth limit around any backend: a token bucket shared by every transfer thread.

The link to the offsite data center is shared with the municipalities' own traffic, so an
operator caps replication (``--limit-rate BYTES/s``). The bucket lets transfers run into
debt and then sleep it off, so the average over any few seconds is the limit no matter
how many threads send or how large each object is.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from datetime import datetime

from dc.errors import N_, UsageError
from storage.backend import Backend
from storage.wrapper import BackendWrapper

_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "ki": 1024, "mi": 1024**2, "gi": 1024**3}


def parse_rate(text: str) -> float:
    """``"5000000"``, ``"5M"``, ``"500KiB"`` (optionally ending ``/s``) → bytes per second."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmg]i?)?b?(?:/s)?\s*", text.lower())
    if not match:
        raise UsageError(N_("invalid rate '{text}': use bytes per second, e.g. 5000000, 5M or 500KiB"), text=text)
    rate = float(match.group(1)) * _UNITS[match.group(2) or ""]
    if rate <= 0:
        raise UsageError(N_("rate must be positive, got '{text}'"), text=text)
    return rate


class TokenBucket:
    """``take(n)`` blocks until ``n`` bytes fit the rate; thread-safe."""

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(rate, 64 * 1024)
        self._tokens = self.burst
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = threading.Lock()

    def take(self, amount: int) -> float:
        """Charge ``amount`` bytes; return how long the caller slept."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= amount
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait


class RateLimitedBackend(BackendWrapper):
    """Charges every byte saved to and loaded from ``inner`` to one bucket."""

    def __init__(self, inner: Backend, bucket: TokenBucket) -> None:
        super().__init__(inner)
        self.bucket = bucket

    def save(self, key: str, data: bytes | bytearray | memoryview, *, retain_until: datetime | None = None) -> None:
        self.bucket.take(len(data))
        self.inner.save(key, data, retain_until=retain_until)

    def save_new(self, key: str, data: bytes) -> bool:
        self.bucket.take(len(data))
        return self.inner.save_new(key, data)

    def load(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        data = self.inner.load(key, offset, length)
        self.bucket.take(len(data))
        return data
