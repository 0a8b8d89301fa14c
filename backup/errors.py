"""Errors of the repository layer, each mapped to one of the CLI's exit codes."""

from __future__ import annotations

from dc.errors import AuthError, BcpError, ProblemFound, UsageError


class RepositoryError(BcpError):
    """The repository cannot be used as asked (exit 1)."""


class NotARepository(UsageError):
    """The URL holds no bcpctl repository (exit 2)."""


class WrongPassword(AuthError):
    """No key slot opens with the given passphrase or escrow shares (exit 3)."""


class CorruptObject(ProblemFound):
    """An object failed authentication, hashing or parsing (exit 1)."""


class SnapshotNotFound(UsageError):
    """No snapshot matches the id, prefix or ``latest[:SYSTEM]`` (exit 2)."""


class HostileSnapshot(ProblemFound):
    """A snapshot would write outside the restore target (exit 1); nothing was written."""


class VerificationFailed(ProblemFound):
    """Restored data differs from what was recorded at backup time (exit 1)."""


class SourceError(BcpError):
    """A backup source could not be read (exit 1)."""


class TargetNotEmpty(UsageError):
    """A restore into a target that holds something, without ``--overwrite`` (exit 2); nothing was written."""
