"""Errors of the monitoring package, rooted in the project-wide :class:`~dc.errors.BcpError`."""

from __future__ import annotations

from dc.errors import BcpError, UsageError


class ServeError(BcpError):
    """The service could not start or keep running (exit 1)."""


class ScheduleError(UsageError):
    """A schedule in the configuration that no trigger can express (exit 2)."""


class JobBusy(BcpError):
    """Another run of the same job holds its claim: this run is skipped, not repeated."""
