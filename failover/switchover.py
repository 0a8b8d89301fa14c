"""The switchover drill: a planned failover to the offsite site and a failback right after.

It is the only drill that proves the whole round trip — fence, restore into production at
the offsite site, promote, then reverse replication and switching back — so it runs the
real :func:`~failover.failover.execute_failover` and :func:`~failover.failback.execute_failback`
(each recorded as its own run) and records a drill run that sums them up. Being planned,
it needs the same confirmation as a real failover, the fence must fully succeed, and a
failover that does not complete is rolled back.
"""

from __future__ import annotations

from dc.clock import utcnow
from dc.errors import N_, Message, UsageError
from failover.context import RunContext
from failover.drillrequest import DrillRequest
from failover.failback import FailbackRequest, execute_failback
from failover.failover import FailoverRequest, execute_failover
from failover.hooks import Hooks
from failover.lifecycle import new_run, recorded_run
from failover.plan import RecoveryPlan
from failover.results import Check, RunResult


def run_switchover(
    ctx: RunContext,
    request: DrillRequest,
    plan: RecoveryPlan,
    *,
    hooks: Hooks | None = None,
    handle_signals: bool = True,
) -> RunResult:
    if request.tenant or request.systems:
        raise UsageError(N_("a switchover moves every system; --tenant and --system do not apply"))
    to_site = ctx.site(request.site)
    declared = utcnow()
    over = execute_failover(
        ctx,
        FailoverRequest(
            to_site,
            confirmed=request.confirmed,
            approver=request.approver,
            approver_secret=request.approver_secret,
            escrow=request.escrow,
            workers=request.workers,
            planned=True,
            operator=request.operator,
            operator_secret=request.operator_secret,
        ),
        hooks=hooks,
        handle_signals=handle_signals,
    )
    back = None
    if over.status == "passed":
        back = execute_failback(
            ctx,
            FailbackRequest(
                request.confirmed,
                request.approver,
                request.approver_secret,
                request.workers,
                operator=request.operator,
                operator_secret=request.operator_secret,
            ),
            hooks=hooks,
            handle_signals=handle_signals,
        )
    result, _token = new_run(
        ctx, "drill", "switchover", ctx.config.primary_site, plan, declared=declared, target_site=to_site,
        workers=over.workers, approver=over.approver,
    )  # fmt: skip
    with recorded_run(ctx, result, timeout=None, handle_signals=False):
        result.systems = over.systems
        result.hooks = over.hooks + (back.hooks if back else [])
        result.phases = {f"failover {k}": v for k, v in over.phases.items()}
        result.checks.append(
            Check(
                f"failover to {to_site}",
                over.status == "passed",
                Message(N_("run {id}: {status} {value}"), id=over.id, status=over.status, value=over.error or ""),
            )
        )
        result.checks.append(
            Check(
                f"failback to {ctx.config.primary_site}",
                back is not None and back.status == "passed",
                Message(N_("run {id}: {status} {value}"), id=back.id, status=back.status, value=back.error or "")
                if back
                else Message(N_("not run: the failover did not pass")),
            )
        )
        if back is not None:
            result.phases.update({f"failback {k}": v for k, v in back.phases.items()})
            result.cleanup = back.cleanup
        result.warnings = over.warnings + (back.warnings if back else [])
    return result
