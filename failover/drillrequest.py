"""What a drill is asked to do, and what is refused before a run is recorded.

:func:`failover.drill.run_drill` runs a request; the ``readiness`` and ``switchover`` modes
have their own modules, which take the same request, so it lives below all three.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dc.errors import N_, UsageError
from failover.context import RunContext
from failover.plan import RecoveryPlan, build_plan, require_targets, select_systems

MODES = ("readiness", "isolated", "point-in-time", "staff-loss", "switchover")


@dataclass(frozen=True)
class DrillRequest:
    mode: str = "isolated"
    tenant: str | None = None
    systems: tuple[str, ...] = ()
    #: point-in-time: restore the newest snapshot taken strictly before this instant
    before: datetime | None = None
    site: str | None = None
    #: staff-loss: files holding SLIP-39 shares (K of them open the repository)
    escrow: tuple[str, ...] = ()
    timeout: float | None = None
    workers: int | None = None
    #: switchover only: the operator confirmed, and the second approver's name and own secret
    confirmed: bool = False
    approver: str | None = None
    approver_secret: str | None = None
    #: the id the run was recorded under before it began (:func:`failover.records.announce_run`)
    run_id: str | None = None
    #: who asked for the drill, when not the system user running bcpctl (a web account)
    operator: str | None = None
    operator_secret: str | None = None


def validate(request: DrillRequest) -> None:
    if request.mode not in MODES:
        raise UsageError(
            N_("unknown drill mode '{mode}' (use one of: {MODES})"), mode=request.mode, MODES=", ".join(MODES)
        )
    if request.mode == "point-in-time":
        if request.before is None:
            raise UsageError(N_("point-in-time needs --before TIME (the moment the data went bad)"))
        if request.before.tzinfo is None:
            raise UsageError(N_("--before needs a time zone (e.g. 2025-06-01T09:00+09:00)"))
    elif request.before is not None:
        raise UsageError(N_("--before only applies to --mode point-in-time"))
    if request.mode == "staff-loss" and not request.escrow:
        raise UsageError(
            N_("staff-loss opens the offsite repository from escrow shares only: give --escrow FILE (K times)")
        )


def drill_plan(ctx: RunContext, request: DrillRequest) -> RecoveryPlan:
    plan = build_plan(ctx.config, select_systems(ctx.config, tenant=request.tenant, systems=request.systems))
    require_targets(plan)
    return plan


def check_startable(ctx: RunContext, request: DrillRequest) -> None:
    """Refuse what :func:`run_drill` would refuse before it records a run: for callers that record first."""
    validate(request)
    drill_plan(ctx, request)
    ctx.site(request.site)
