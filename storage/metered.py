"""Counting what crosses a backend: operations, bytes, errors and time, per operation.

The per-run figures of a replication ("bytes sent", MB/s) and the benchmark come from these
counters, measured at the storage boundary rather than estimated from object sizes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from storage.backend import Backend, ObjectInfo
from storage.wrapper import BackendWrapper

T = TypeVar("T")


@dataclass
class OperationCounter:
    calls: int = 0
    errors: int = 0
    bytes: int = 0
    seconds: float = 0.0


@dataclass
class BackendCounters:
    operations: dict[str, OperationCounter] = field(default_factory=dict)

    @property
    def bytes_sent(self) -> int:
        return sum(self.operations[op].bytes for op in ("save", "save_new") if op in self.operations)

    @property
    def bytes_received(self) -> int:
        return self.operations["load"].bytes if "load" in self.operations else 0

    def calls(self, op: str) -> int:
        return self.operations[op].calls if op in self.operations else 0


class MeteredBackend(BackendWrapper):
    def __init__(self, inner: Backend, clock: Callable[[], float] = time.perf_counter) -> None:
        super().__init__(inner)
        self._counters = BackendCounters()
        self._lock = threading.Lock()
        self._clock = clock

    def _count(self, op: str, fn: Callable[[], T], size: Callable[[T], int] | int = 0) -> T:
        started = self._clock()
        failed = False
        try:
            result = fn()
            return result
        except Exception:
            failed = True
            raise
        finally:
            elapsed = self._clock() - started
            with self._lock:
                counter = self._counters.operations.setdefault(op, OperationCounter())
                counter.calls += 1
                counter.seconds += elapsed
                if failed:
                    counter.errors += 1
                else:
                    counter.bytes += size if isinstance(size, int) else size(result)

    def counters(self) -> BackendCounters:
        """A copy of the counters so far."""
        with self._lock:
            return BackendCounters({op: OperationCounter(**vars(c)) for op, c in self._counters.operations.items()})

    def save(self, key: str, data: bytes | bytearray | memoryview, *, retain_until: datetime | None = None) -> None:
        self._count("save", lambda: self.inner.save(key, data, retain_until=retain_until), len(data))

    def save_new(self, key: str, data: bytes) -> bool:
        return self._count("save_new", lambda: self.inner.save_new(key, data), len(data))

    def load(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        return self._count("load", lambda: self.inner.load(key, offset, length), len)

    def stat(self, key: str) -> ObjectInfo:
        return self._count("stat", lambda: self.inner.stat(key))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return iter(self._count("list", lambda: list(self.inner.list(prefix))))

    def remove(self, key: str) -> None:
        self._count("remove", lambda: self.inner.remove(key))
