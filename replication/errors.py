"""Errors of the replication layer, each mapped to one of the CLI's exit codes.

Storage failures themselves are :class:`backup.backend.StorageError` (exit 1) and
:class:`backup.backend.ObjectNotFound`; rejected credentials and unknown host keys are
:class:`dc.errors.AuthError` (exit 3). What is added here is what only replication knows.
"""

from __future__ import annotations

from backup.backend import StorageError
from dc.errors import ProblemFound, UsageError


class Unreachable(StorageError):
    """The storage endpoint cannot be reached at all (connection refused, DNS, timeout)."""


class ManifestRefused(ProblemFound):
    """The source's signed manifest is missing, forged, rolled back or names missing objects (exit 1).

    Nothing past the refusal is written to the target: its last accepted state stays intact.
    """


class TargetMismatch(UsageError):
    """The target already holds a different repository (exit 2); nothing was written."""


class PermanentStorageError(StorageError):
    """A storage refusal that retrying cannot fix (a range past the end, a missing bucket)."""


class DigestRefused(StorageError):
    """The server found other digests for a body than the request declared.

    Retryable as such (bytes damaged on the wire arrive whole next time); a backend that can
    see its own bytes changed since they were hashed raises :class:`PermanentStorageError`.
    """


class AccessDenied(PermanentStorageError):
    """The storage refused the operation on this object (permissions or an Object Lock retention)."""
