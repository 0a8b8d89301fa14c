"""Drills at the offsite site: isolated restore, point-in-time (ransomware), staff loss.

All three run the same steps — sweep what earlier runs left, open the offsite repository,
restore each system's chosen snapshot into a sandbox in plan order, verify, measure, tear
the sandboxes down and prove they are gone — and differ only in the recovery point and the
key material:

* ``isolated``: the newest offsite snapshot of each system;
* ``point-in-time``: the newest snapshot taken before ``--before`` (the last known good state
  before a ransomware event); RPO is measured against that event time;
* ``staff-loss``: the primary and the people who know its passphrase are gone (大槌,
  陸前高田): the offsite repository is opened with K escrowed SLIP-39 shares only, never
  the configured passphrase.

``readiness`` and ``switchover`` have their own modules; :func:`run_drill` dispatches to them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from backup.snapshot import Snapshot
from dc.errors import N_, Message
from failover.abort import AbortSignal
from failover.activesite import active_site, drill_notice
from failover.calendar import blackout_on
from failover.cleanup import cleanup_checked, sweep
from failover.context import RunContext
from failover.drillrequest import DrillRequest, drill_plan, validate
from failover.execution import run_plan
from failover.lifecycle import new_run, recorded_run, repository_at
from failover.measure import apply_measurement
from failover.plan import PlanStep, RecoveryPlan
from failover.readiness import check_readiness
from failover.recover import RecoveryContext, point_in_time, recover_system, snapshots_by_system
from failover.results import Check, RunResult
from failover.sandbox import Sandboxes, Target
from failover.switchover import run_switchover
from failover.verify import dir_separation, pg_separation


def run_drill(
    ctx: RunContext,
    request: DrillRequest,
    *,
    on_bytes: Callable[[int], None] | None = None,
    handle_signals: bool = True,
) -> RunResult:
    """Run one drill and return its judged, recorded result (reports written)."""
    validate(request)
    plan = drill_plan(ctx, request)
    if request.mode == "readiness":
        return check_readiness(ctx, request, plan)
    if request.mode == "switchover":
        return run_switchover(ctx, request, plan, handle_signals=handle_signals)
    site = ctx.site(request.site)
    timeout = request.timeout or ctx.settings.timeout or max(s.rto or 0 for s in plan.steps) or None
    result, token = new_run(
        ctx,
        "drill",
        request.mode,
        site,
        plan,
        run_id=request.run_id,
        operator=request.operator,
        tenant=request.tenant,
        timeout=timeout,
    )
    if notice := drill_notice(active_site(ctx.config, ctx.state), site):
        result.warnings.append(notice)
    if request.before is not None:
        result.rpo_reference = request.before
    if blackout := blackout_on(result.declared_at, ctx.settings.blackouts):
        # Operators may drill by hand in a blackout; the scheduler never does (failover.schedule).
        result.warnings.append(
            Message(
                N_("run during the blackout period '{name}' ({start}..{end})"),
                name=blackout.name,
                start=blackout.start,
                end=blackout.end,
            )
        )
    run_id, declared = result.id, result.declared_at
    origin = time.monotonic()
    probe = ctx.settings.steady_state
    with recorded_run(ctx, result, timeout=timeout, probe=probe, handle_signals=handle_signals) as abort:
        if probe is not None:
            from failover.abort import run_probe

            ok, detail = run_probe(probe)
            result.checks.append(Check("steady state before the drill", ok, detail))
            if not ok:
                abort.trigger(Message(N_("steady-state probe failed before the drill: {detail}"), detail=detail))
        result.swept = sweep(ctx.state, declared, exclude=run_id)
        sandboxes = Sandboxes(ctx.state, run_id, token, site, ctx.config.sites[site])
        try:
            abort.check()
            _restore_all(ctx, request, plan, result, sandboxes, abort, origin, on_bytes)
        finally:
            result.cleanup = cleanup_checked(ctx.state, run_id)
            result.phases["cleanup"] = round(time.monotonic() - origin, 3)
    return result


def _restore_all(
    ctx: RunContext,
    request: DrillRequest,
    plan: RecoveryPlan,
    result: RunResult,
    sandboxes: Sandboxes,
    abort: AbortSignal,
    origin: float,
    on_bytes: Callable[[int], None] | None,
) -> None:
    site = result.site or ctx.default_offsite()
    with repository_at(ctx, site, request.escrow) as repo:
        result.phases["open"] = round(time.monotonic() - origin, 3)
        unreadable: dict[str, str] = {}
        snapshots = snapshots_by_system(repo, errors=unreadable)
        if unreadable:
            result.warnings.append(
                Message(N_("{count} unreadable snapshot(s) at {site} were ignored"), count=len(unreadable), site=site)
            )
        pg_tenants = sorted({s.tenant for s in plan.steps if s.source_kind in ("postgres", "postgres-wal")})
        if pg_tenants:
            sandboxes.prepare_logins(pg_tenants)
        by_tenant: dict[str, set[str]] = {}
        for step in plan.steps:
            by_tenant.setdefault(step.tenant, set()).add(step.system)

        def make_target(step: PlanStep, snap: Snapshot) -> Target:
            if snap.source_kind in ("postgres", "postgres-wal"):
                return sandboxes.database(step.system, step.tenant)
            return sandboxes.directory(step.system, step.tenant)

        def separation(step: PlanStep, target: Target) -> list[Check]:
            if target.dsn is not None:
                return pg_separation(target)
            assert target.path is not None
            return [dir_separation(target.path.parent, by_tenant[step.tenant])]

        def after_restore(target: Target) -> None:
            if target.dsn is not None:
                sandboxes.grant_read(target)

        rctx = RecoveryContext(
            repo,
            snapshots,
            abort,
            origin,
            make_target,
            before=request.before,
            after_restore=after_restore,
            separation=separation,
            **ctx.smoke(),
            on_bytes=on_bytes,
            point_in_time=point_in_time(ctx, site),
        )
        workers = request.workers or ctx.settings.workers
        result.systems = run_plan(
            plan, lambda step, group: recover_system(rctx, step, group), workers=workers, abort=abort
        )
        for system in result.systems:
            apply_measurement(
                system, declared=result.declared_at, rpo_reference=result.rpo_reference or result.declared_at
            )
        result.phases["restore"] = round(time.monotonic() - origin, 3)
