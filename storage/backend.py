"""The storage interface every repository lives on: opaque objects under slash-separated keys.

Modelled on restic's ``internal/backend/backend.go``: a backend is dumb. It stores opaque
objects and knows nothing about packs, keys or snapshots. Retry, rate limiting and metrics
are wrappers around a backend (:mod:`storage.wrapper`), never code inside one. The
implementations are the local directory (:mod:`storage.local`), S3 (:mod:`storage.s3`) and
SFTP (:mod:`storage.sftp`); :func:`storage.url.open_backend` picks one by URL. The
repository (``backup/``) and replication only ever see this protocol.

Contracts every implementation honours (the conformance suite in
``tests/storage/test_backend_conformance.py`` checks each one):

* ``save`` is atomic: a reader sees either no object or the complete bytes, never a prefix.
  It creates or replaces the object. Content-addressed keys are never rewritten with
  different bytes by bcpctl, so replacement only matters for fixed-name objects.
* ``save_new`` creates the object only if the key is absent and says whether it did; it is
  the primitive behind the prune lease.
* ``load`` returns exactly ``length`` bytes from ``offset`` (``None``: to the end); a range
  beyond the end raises :class:`~storage.errors.StorageError`, never
  :class:`~storage.errors.ObjectNotFound`.
* ``stat`` and ``load`` raise :class:`~storage.errors.ObjectNotFound` for a missing key.
* ``list(prefix)`` yields every object whose key starts with ``prefix``, each once, in no
  particular order, with its size and the storage's own modification time.
* ``remove`` of a missing key is not an error (removal is idempotent).

What some backends can do beyond this (a checksum they want from the caller, Object Lock, a
version history) is a typed capability of :mod:`storage.capabilities`, found through any
wrappers. Storage that keeps every version of an object (S3 with versioning, which Object
Lock turns on) says so with ``capabilities.versions``: overwriting or deleting there only
adds a version or a delete marker, so what a stolen write credential "destroyed" is still in
the history (``replication/history.py`` reads it, ``replicate --repair`` puts it back).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from dc.errors import N_, UsageError


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    #: modification time as the storage reports it (seconds since the epoch); prune measures
    #: grace periods with it instead of the client's clock.
    mtime: float


@dataclass(frozen=True)
class Capabilities:
    #: the storage can refuse deletes until a retain-until date (S3 Object Lock).
    object_lock: bool = False
    #: ranged reads are as cheap as local ``pread``; restore then reads blobs in place instead
    #: of fetching whole packs.
    cheap_ranges: bool = False
    #: the storage keeps older versions of overwritten and deleted objects (:class:`~storage.capabilities.Versioned`).
    versions: bool = False


@dataclass(frozen=True)
class ObjectVersion:
    """One version of an object, or a delete marker, as the storage's history lists it."""

    key: str
    version_id: str
    size: int
    #: when the storage wrote this version (seconds since the epoch, the storage's clock)
    mtime: float
    #: the version a plain read returns (or, for a delete marker, the reason it finds nothing)
    latest: bool
    #: a delete marker: the object was deleted without a version id; older versions remain
    deleted: bool = False
    #: the storage's entity tag; equal tags of one key mean equal bytes
    etag: str = ""


@runtime_checkable
class Backend(Protocol):
    """Opaque object storage. See the module docstring for the contracts."""

    @property
    def url(self) -> str:
        """Where this backend points, without credentials (safe to log)."""
        ...

    @property
    def capabilities(self) -> Capabilities: ...

    def save(self, key: str, data: bytes | bytearray | memoryview, *, retain_until: datetime | None = None) -> None: ...

    def save_new(self, key: str, data: bytes) -> bool: ...

    def load(self, key: str, offset: int = 0, length: int | None = None) -> bytes: ...

    def stat(self, key: str) -> ObjectInfo: ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]: ...

    def remove(self, key: str) -> None: ...

    def close(self) -> None: ...


def check_key(key: str) -> str:
    """Refuse keys that could escape the backend's root (``..``, absolute, empty parts)."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\0" in key:
        raise UsageError(N_("invalid object key '{key}'"), key=key)
    return key
