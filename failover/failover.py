"""Failover: fence the primary, open the control state at the offsite, restore every system, promote.

The same plan and restore path as a drill, with the production targets of the offsite site
(``System.restore_dsn`` / ``restore_dir``) instead of sandboxes. Order of events, and why:

1. preflight (nothing changed yet): confirmation, every target configured, reachable and
   empty, no failover already active at the target site;
2. fence the primary — before any write at the offsite, so two sites never accept writes. A
   primary that answers and is not fenced refuses the failover here (exit 1): its control
   state is still live, and promoting a copy beside it would split it;
3. open the control state at the offsite FIRST (:mod:`failover.controlplane`): the newest copy
   that verifies becomes the site's control database, its first audit entry records the
   failover and the last entry received, and the run is recorded there — the lost primary's
   database is never touched or recreated;
4. restore and verify every system (RTO/RPO measured as in drills);
5. promote the offsite site only if every system came back verified. Otherwise endpoints stay
   where they were; a planned switchover is rolled back (the primary's fence is lifted),
   a disaster failover leaves the primary fenced and the report says what to fix.

The measured control-plane RPO (the disaster minus the promoted copy's time) is in the run's
``control_plane`` section, its reports and ``bcp_control_plane_failover_rpo_seconds``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import Engine

from backup.snapshot import Snapshot
from dc.approvers import Proof
from dc.clock import jst_text, utcnow
from dc.errors import N_, BcpError, Message, UsageError
from failover.approval import confirm_request, record_approval
from failover.context import RunContext
from failover.controlchoice import control_plane
from failover.controlplane import ControlPlane, PromotionOrder, record_promotion
from failover.errors import FailoverRefused
from failover.execution import run_plan
from failover.hooks import HookResult, Hooks, configured_hooks, fence_allows_failover
from failover.lifecycle import new_run, new_run_id, operator_name, recorded_run, repository_at
from failover.measure import apply_measurement, missed_targets
from failover.plan import PlanStep, build_plan, require_targets
from failover.records import active_failover
from failover.recover import RecoveryContext, point_in_time, recover_system, snapshots_by_system
from failover.results import RunResult
from failover.sandbox import Target
from failover.targets import production_target, target_problems
from failover.worklist import failover_losses


@dataclass(frozen=True)
class FailoverRequest:
    to_site: str
    confirmed: bool = False
    approver: str | None = None
    #: the approver's own secret (dc.approvers), never from the command line
    approver_secret: str | None = None
    #: staff loss: open the offsite repository from escrow shares instead of the passphrase
    escrow: tuple[str, ...] = ()
    workers: int | None = None
    #: a planned switchover (drill): the fence must fully succeed, a failure is rolled back
    planned: bool = False
    #: when the disaster struck, if earlier than the run (RTO and RPO are measured from it)
    declared_at: datetime | None = None
    #: two-person rule: the operator's enrolled name and own secret (failover/approval.py)
    operator: str | None = None
    operator_secret: str | None = None
    #: the site this bcpctl runs at (``--site``/``$BCPCTL_SITE``): a failover runs where it moves
    #: production, since the control state is promoted there; ``None``: the caller's context knows
    at_site: str | None = None
    #: list what was lost after the promotion (``now``: two more base restores per system with
    #: ``surviving_wal``) or leave it to ``bcpctl failover lost`` (``later``)
    lost_work: Literal["now", "later"] = "now"


def hooks_for(ctx: RunContext) -> Hooks:
    return configured_hooks(ctx.settings.failover.hooks, ctx.config, ctx.config_dir, ctx.state)


def preflight(ctx: RunContext, request: FailoverRequest) -> Proof | None:
    """Everything checked before the first change; returns the approver's signed approval if one approved.

    Reads no control database: the one that counts is the target site's, opened after the fence.
    """
    config = ctx.config
    if request.to_site not in config.sites:
        raise FailoverRefused(
            N_("unknown site '{to_site}' (known: {sites})"), to_site=request.to_site, sites=", ".join(config.sites)
        )
    if request.to_site == config.primary_site:
        raise FailoverRefused(
            N_("'{to_site}' is the primary; fail over to an offsite site, fail back with failback"),
            to_site=request.to_site,
        )
    if request.at_site is not None and not request.planned and request.at_site != request.to_site:
        raise UsageError(
            N_(
                "this bcpctl runs at '{at_site}' (--site, $BCPCTL_SITE) but the failover moves production "
                "to '{to_site}': run it at {to_site}, where its control state is promoted"
            ),
            at_site=request.at_site,
            to_site=request.to_site,
        )
    if request.declared_at is not None:
        if request.declared_at.tzinfo is None:
            raise FailoverRefused(N_("--declared-at needs a time zone (e.g. 2026-11-28T06:12+09:00)"))
        if request.declared_at > utcnow() + timedelta(minutes=1):
            raise FailoverRefused(
                N_("--declared-at {jst_text} is in the future"), jst_text=jst_text(request.declared_at)
            )
    what = {
        "consortium": config.consortium,
        "to_site": request.to_site,
        "planned": request.planned,
        "declared_at": request.declared_at.isoformat() if request.declared_at else None,
        "at": utcnow().isoformat(),
    }
    return confirm_request(ctx.settings.failover, config.approvers, "failover", request, operator_name(), what)


def _refuse_if_active(state: Engine) -> None:
    if (active := active_failover(state)) is not None:
        raise FailoverRefused(
            N_("already failed over to '{target_site}' by run {id}; run 'bcpctl failback' first"),
            target_site=active.target_site,
            id=active.id,
        )


def _peek_active(ctx: RunContext, to_site: str) -> None:
    """Refuse before the fence when the target site's own control database records an active failover."""
    from dc.state import open_state
    from failover.controlplane import state_url

    try:
        engine = open_state(state_url(ctx.config, to_site))
    except BcpError:
        return  # absent (the promotion puts the copy there) or not at this bcpctl's schema yet (it upgrades it)
    try:
        _refuse_if_active(engine)
    finally:
        engine.dispose()


def _fence(ctx: RunContext, hooks: Hooks, request: FailoverRequest, run_id: str) -> HookResult:
    """Fence the primary; refuse (exit 1, nothing promoted) when it answers and is not fenced."""
    primary = ctx.config.primary_site
    fence = hooks.fence(primary, run_id)
    if fence_allows_failover(fence, planned=request.planned):
        return fence
    rolled: str = ""
    if request.planned:
        rollback = hooks.failback(primary, run_id)
        # a Message, so the refusal's stored line keeps the hook's detail in the reader's language
        rolled = Message(N_("; rolled back: {primary} unfenced ({detail})"), primary=primary, detail=rollback.detail)
    raise FailoverRefused(
        N_(
            "{primary} still answers and is not fenced ({detail}): the control state at {to_site} was "
            "not promoted and nothing was restored{rolled}"
        ),
        primary=primary,
        detail=fence.detail,
        to_site=request.to_site,
        rolled=rolled,
    )


def execute_failover(
    ctx: RunContext,
    request: FailoverRequest,
    *,
    hooks: Hooks | None = None,
    control: ControlPlane | None = None,
    handle_signals: bool = True,
    on_bytes: Callable[[int], None] | None = None,
) -> RunResult:
    """The failover of the module docstring. Afterwards ``ctx.state`` is the control state
    promoted at ``request.to_site``, where the run is recorded.

    A planned switchover (a drill that fails back right after) moves no control state: the
    controller that runs it keeps its own, and records both runs there.
    """
    approval = preflight(ctx, request)
    if request.planned:
        _refuse_if_active(ctx.state)
    else:
        _peek_active(ctx, request.to_site)
    plan = build_plan(ctx.config)
    require_targets(plan)
    problems = target_problems(ctx.config, plan, ctx.config_dir)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise FailoverRefused(
            N_("failover targets not ready, nothing was changed: {problems}{more}"), problems=problems[0], more=more
        )
    control = control or control_plane(ctx.config, ctx.config_dir)
    primary = ctx.config.primary_site
    declared = request.declared_at or utcnow()
    run_id, token = new_run_id(declared)
    # Times are seconds since the declared disaster: a failover started an hour after the
    # earthquake has already spent an hour of every system's RTO.
    origin = time.monotonic() - max(0.0, (utcnow() - declared).total_seconds())
    kind = ctx.settings.failover.hooks
    fence = _fence(ctx, hooks or configured_hooks(kind, ctx.config, ctx.config_dir, None), request, run_id)
    fenced_at = round(time.monotonic() - origin, 3)
    promotion = None
    if not request.planned:
        order = PromotionOrder(lambda: repository_at(ctx, request.to_site, request.escrow), declared, token)
        promotion = control.promote(request.to_site, order, from_site=primary)
        from dc.state import open_state

        ctx.state = open_state(promotion.url)
        record_promotion(ctx.state, promotion, run_id, operator_name())
        _refuse_if_active(ctx.state)
    hooks = hooks or hooks_for(ctx)
    mode = "switchover" if request.planned else "execute"
    result, _token = new_run(
        ctx,
        "failover",
        mode,
        primary,
        plan,
        declared=declared,
        run_id=run_id,
        target_site=request.to_site,
        workers=request.workers,
        approver=approval.approver if approval else None,
    )
    result.hooks.append(vars(fence))
    if promotion is not None:
        result.control_plane = promotion.document()
        result.warnings += promotion.warnings
    record_approval(ctx.state, approval, run_id)
    promoted = False
    with recorded_run(ctx, result, timeout=None, handle_signals=handle_signals) as abort:
        try:
            if fence.unreachable_hosts:
                result.warnings.append(
                    Message(N_("fence: {names} unreachable (site down?)"), names=", ".join(fence.unreachable_hosts))
                )
            result.phases["fence"] = fenced_at
            result.phases["control"] = round(time.monotonic() - origin, 3)
            with repository_at(ctx, request.to_site, request.escrow) as repo:
                result.phases["open"] = round(time.monotonic() - origin, 3)
                snapshots = snapshots_by_system(repo)

                def make_target(step: PlanStep, snap: Snapshot) -> Target:
                    return production_target(ctx.config, step.system, snap.source_kind, ctx.config_dir)

                rctx = RecoveryContext(
                    repo,
                    snapshots,
                    abort,
                    origin,
                    make_target,
                    **ctx.smoke(),
                    on_bytes=on_bytes,
                    point_in_time=point_in_time(ctx, request.to_site),
                )
                result.systems = run_plan(
                    plan, lambda step, group: recover_system(rctx, step, group), workers=result.workers, abort=abort
                )
            for system in result.systems:
                apply_measurement(system, declared=declared, rpo_reference=declared, targets_fail=False)
                result.warnings += missed_targets(system)
            result.phases["restore"] = round(time.monotonic() - origin, 3)
            abort.check()
            failed = [s.system for s in result.systems if not s.ok]
            if failed:
                raise FailoverRefused(
                    N_("not promoted: {n_failed} system(s) did not come back ({failed})"),
                    n_failed=len(failed),
                    failed=", ".join(failed[:3]),
                )
            promote = hooks.promote(request.to_site, run_id)
            result.hooks.append(vars(promote))
            if not promote.ok:
                raise FailoverRefused(
                    N_("systems restored but promoting {to_site} failed: {detail}"),
                    to_site=request.to_site,
                    detail=promote.detail,
                )
            promoted = True
            result.phases["promote"] = round(time.monotonic() - origin, 3)
            if not request.planned:
                # after the promotion: listing what was lost recovers two more clusters per
                # system, which must not delay service
                result.lost, lost_warnings = failover_losses(
                    ctx.config,
                    ctx.config_file,
                    result.systems,
                    declared,
                    request.to_site,
                    ctx.state,
                    result.id,
                    defer=request.lost_work == "later",
                )
                result.warnings += lost_warnings
        finally:
            if not promoted and request.planned and result.hooks:
                # A planned switchover that did not complete gives service back to the primary.
                rollback = hooks.failback(primary, run_id)
                result.hooks.append(vars(rollback))
                result.warnings.append(
                    Message(N_("rolled back: {primary} unfenced ({detail})"), primary=primary, detail=rollback.detail)
                )
            elif not promoted and result.hooks:
                result.warnings.append(
                    Message(
                        N_(
                            "{primary} stays fenced: fix the failures, empty the failover targets "
                            "and run failover again"
                        ),
                        primary=primary,
                    )
                )
    return result
