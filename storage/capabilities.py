"""What some backends can do beyond the :class:`~storage.backend.Backend` protocol, found by type.

restic's idea (``backend.Unwrapper``, ``backend.AsBackend[B]``): a wrapper says what it wraps
through ``unwrap()``, and :func:`as_capability` walks that chain, outermost first, to the
first backend of the asked type. Nothing is forwarded by attribute name, so the type checker
sees every capability, and a wrapper can neither hide one nor pretend to have one.

A class that implements a capability may still sit on storage that cannot use it (an S3
bucket without Object Lock or versioning): ``capabilities`` says what the storage can do
at run time, and :func:`object_locking` and :func:`versioned` check both.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Protocol, TypeVar, runtime_checkable

from storage.backend import Backend, ObjectVersion

T = TypeVar("T")


@runtime_checkable
class Unwrapper(Protocol):
    """A wrapper around one backend (retry, rate limit, metering)."""

    def unwrap(self) -> Backend:
        """The backend this one wraps."""
        ...


@runtime_checkable
class NameChecking(Protocol):
    """Storage that stores a content-addressed object only if its bytes hash to its name, and
    hashes them itself on the way (S3: the signed SHA-256 of a single PUT is the name).

    A copier need not hash those objects first: that one pass is the check, and a mismatch
    raises :class:`~storage.errors.NameMismatch` before a byte is stored.
    """

    def checks_name(self, key: str) -> bool:
        """Whether a ``save`` under ``key`` is refused unless its bytes hash to its name."""
        ...


@runtime_checkable
class ObjectLocking(Protocol):
    """COMPLIANCE-mode retention (S3 Object Lock): nobody deletes a version before its date."""

    def lock_until(self, key: str, version_id: str | None = None) -> datetime | None:
        """The retain-until date of the current version (or of ``version_id``), if any."""
        ...

    def extend_lock(self, key: str, until: datetime) -> None:
        """Move the retain-until date later; the storage refuses to move it earlier."""
        ...


@runtime_checkable
class Versioned(Protocol):
    """The version history of storage that keeps one (``capabilities.versions``).

    * ``list_versions(prefix)`` yields every version and delete marker of every key under
      ``prefix``, each once, newest first within a key;
    * ``load_version`` reads one version like :meth:`Backend.load` (``ObjectNotFound`` for an
      unknown key or version id);
    * ``restore_version`` makes the bytes of an older version the current ones again, as a new
      version (history is never rewritten), retained until ``retain_until`` where the storage
      locks objects.
    """

    def list_versions(self, prefix: str = "") -> Iterator[ObjectVersion]: ...

    def load_version(self, key: str, version_id: str, offset: int = 0, length: int | None = None) -> bytes: ...

    def restore_version(self, key: str, version_id: str, *, retain_until: datetime | None = None) -> None: ...


@runtime_checkable
class StrayEntries(Protocol):
    """Storage that can hold entries no backend writes: a local directory's FIFOs, devices, sockets.

    ``list`` never yields them (reading one would wait for ever or never end); ``strays`` names
    them, each with what it is, so ``check`` can report them.
    """

    def strays(self, prefix: str = "") -> Iterator[tuple[str, str]]:
        """``(key, what it is)`` of every entry under ``prefix`` that is not a regular file."""
        ...


def as_capability(backend: Backend, kind: type[T]) -> T | None:
    """``backend`` or the first backend under its wrappers that is a ``kind``; ``None`` if none is.

    ``kind`` is a capability protocol above or a backend class (``LocalBackend``: the files
    are on this machine).
    """
    current = backend
    while True:
        if isinstance(current, kind):
            return current
        if not isinstance(current, Unwrapper):
            return None
        current = current.unwrap()


def object_locking(backend: Backend) -> ObjectLocking | None:
    """``backend``'s Object Lock, or ``None`` if its storage cannot lock objects."""
    locks = as_capability(backend, ObjectLocking)
    return locks if locks is not None and backend.capabilities.object_lock else None


def versioned(backend: Backend) -> Versioned | None:
    """``backend``'s version history, or ``None`` if its storage keeps none."""
    history = as_capability(backend, Versioned)
    return history if history is not None and backend.capabilities.versions else None
