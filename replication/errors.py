"""Errors of the replication layer, each mapped to one of the CLI's exit codes.

Storage failures themselves are :mod:`storage.errors` (exit 1, or exit 2 for a location that
does not exist); rejected credentials and unknown host keys are :class:`dc.errors.AuthError`
(exit 3). What is added here is what only replication knows.
"""

from __future__ import annotations

from dc.errors import ProblemFound, UsageError


class ManifestRefused(ProblemFound):
    """The source's signed manifest is missing, forged or rolled back (exit 1).

    Nothing past the refusal is written to the target: its last accepted state stays intact.
    A genuine manifest that names objects neither site holds intact is no exception: the run
    copies the rest and fails with the same kind of line (:mod:`replication.holdback`).
    """


class TargetMismatch(UsageError):
    """The target already holds a different repository (exit 2); nothing was written."""
