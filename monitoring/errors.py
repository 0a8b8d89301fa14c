"""Errors of the monitoring package, rooted in the project-wide :class:`~dc.errors.BcpError`."""

from __future__ import annotations

from dc.errors import UsageError


class ScheduleError(UsageError):
    """A schedule in the configuration that no trigger can express (exit 2)."""
