"""Errors of the storage layer, each mapped to one of the CLI's exit codes.

Rejected credentials and unknown SSH host keys are :class:`dc.errors.AuthError` (exit 3); a
URL or location that can never work is a :class:`dc.errors.UsageError` (exit 2). What
remains is a storage that failed or refused an operation (exit 1), told apart here by
whether retrying can help (:mod:`storage.retry` reads the classes, never the messages).
"""

from __future__ import annotations

from dc.errors import BcpError, UsageError


class StorageError(BcpError):
    """The storage failed or refused an operation (exit 1); retryable unless a subclass says otherwise."""


class ObjectNotFound(StorageError):
    """The key (or the version of it) does not exist."""


class Unreachable(StorageError):
    """The storage endpoint cannot be reached at all (connection refused, DNS, timeout)."""


class PermanentStorageError(StorageError):
    """A storage refusal that retrying cannot fix (a range past the end, a missing bucket)."""


class NotARegularFile(PermanentStorageError):
    """A local object that is a FIFO, device, socket or directory: stray or planted, never opened blocking.

    Reading one would hang (a FIFO waits for a writer) or never end (``/dev/zero``); it is
    reported as a damaged object, like one whose bytes are wrong.
    """


class DigestRefused(StorageError):
    """The server found other digests for a body than the request declared.

    Retryable as such (bytes damaged on the wire arrive whole next time); a backend that can
    see its own bytes changed since they were hashed raises :class:`PermanentStorageError`.
    """


class NameMismatch(PermanentStorageError):
    """Bytes about to be stored under a content-addressed name hash to something else: nothing was stored.

    Raised by storage that checks names itself (:class:`~storage.capabilities.NameChecking`);
    the bytes were damaged where they were read, or changed while they were being sent.
    """


class AccessDenied(PermanentStorageError):
    """The storage refused the operation on this object (permissions or an Object Lock retention)."""


class LocationMissing(UsageError):
    """Nothing usable at the storage location: no such directory, a file, no permission (exit 2).

    A usage error whatever the URL form, as for any other path that points nowhere.
    """
