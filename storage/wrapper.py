"""The base of backend wrappers: forward everything, override what the wrapper is about.

restic keeps retry, rate limiting and logging out of its backends (``internal/backend/retry``,
``limiter``, ``logger``); the same here, so S3 and SFTP stay dumb and every wrapper works
on every backend. Methods outside the protocol (Object Lock's ``lock_until`` and
``extend_lock``) pass through ``__getattr__``, so wrapping never hides a capability.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from storage.backend import Backend, Capabilities, ObjectInfo


class BackendWrapper:
    def __init__(self, inner: Backend) -> None:
        self.inner = inner

    @property
    def url(self) -> str:
        return self.inner.url

    @property
    def capabilities(self) -> Capabilities:
        return self.inner.capabilities

    def save(self, key: str, data: bytes | bytearray | memoryview, *, retain_until: datetime | None = None) -> None:
        self.inner.save(key, data, retain_until=retain_until)

    def save_new(self, key: str, data: bytes) -> bool:
        return self.inner.save_new(key, data)

    def load(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        return self.inner.load(key, offset, length)

    def stat(self, key: str) -> ObjectInfo:
        return self.inner.stat(key)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self.inner.list(prefix)

    def remove(self, key: str) -> None:
        self.inner.remove(key)

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        # only reached for attributes not defined above (lock_until, extend_lock, location...)
        return getattr(self.inner, name)


def innermost(backend: Backend) -> Backend:
    """The storage under any number of wrappers."""
    while isinstance(backend, BackendWrapper):
        backend = backend.inner
    return backend
