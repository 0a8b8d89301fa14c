"""Errors of recovery plans, drills and failovers, each mapped to one of the CLI's exit codes."""

from __future__ import annotations

from dc.errors import N_, AuthError, ProblemFound, UsageError


class NotDrillable(UsageError):
    """A system lacks RTO/RPO targets: a drill could measure it but never say pass or fail (exit 2)."""


class DrillAborted(ProblemFound):
    """Ctrl-C, SIGTERM, a timeout or a failing steady-state probe stopped the run (exit 1)."""

    def __init__(self, reason: str) -> None:
        super().__init__(N_("aborted: {reason}"), reason=reason)
        self.reason = reason


class RunFailed(ProblemFound):
    """The run finished and something failed: a system, a check or the cleanup (exit 1)."""


class ConfirmationRequired(UsageError):
    """A failover or failback without ``--yes`` (exit 2); nothing was changed."""


class ApprovalRefused(AuthError):
    """The second approver's token is missing, unknown or the approver is the operator (exit 3)."""


class FailoverRefused(ProblemFound):
    """The state of the sites does not allow this failover or failback (exit 1); nothing was changed."""
