"""The base of backend wrappers: pass the protocol through, override what the wrapper is about.

restic keeps retry, rate limiting and logging out of its backends (``internal/backend/retry``,
``limiter``, ``logger``); the same here, so S3 and SFTP stay dumb and every wrapper works
on every backend. A wrapper forwards exactly the :class:`~storage.backend.Backend` protocol;
what the storage can do beyond it is found through :meth:`BackendWrapper.unwrap` by
:func:`storage.capabilities.as_capability`, never forwarded by attribute name.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from storage.backend import Backend, Capabilities, ObjectInfo


class BackendWrapper:
    def __init__(self, inner: Backend) -> None:
        self.inner = inner

    def unwrap(self) -> Backend:
        """The wrapped backend (:class:`storage.capabilities.Unwrapper`)."""
        return self.inner

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
