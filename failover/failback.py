"""Failback: bring the offsite site's writes home to the recovered primary, then switch back.

Research §C.8: failback is first-class, reverse replication keeps the writes made during
the failover, and nothing at the source is deleted before it is safe. It runs at the active
site (``--site``/``$BCPCTL_SITE``), where the live control state is. Steps:

1. make the primary ready to take the control state over (:mod:`failover.controlplane`:
   PostgreSQL rebuilds its control server as a standby of the active site, ``pg_rewind`` else
   ``pg_basebackup``; nothing to do for SQLite);
2. fence the offsite site (its writes stop, so the final copy is complete);
3. back up every system's offsite production target into the offsite repository (tagged
   with this run), so the writes made during the failover are in a snapshot;
4. replicate the new objects to the primary's repository (ciphertext only, the offsite's
   signed manifest verified, nothing deleted at the primary);
5. restore those snapshots from the *primary's* repository into staging beside each
   production location, verify hashes and row counts (:mod:`failover.staging`);
6. swap every verified copy into place (the primary's previous data is kept);
7. hand the control state over: the offsite's stops changing and the primary takes all of it
   (SQLite: a last copy shipped and promoted; PostgreSQL: the offsite's database fenced
   read-only, the primary's standby caught up and promoted); its first audit entry records the
   handover, and the run goes on recording there;
8. lift the primary's fence and promote it (``failback.yml``),
9. lift the offsite's fence without promoting it (``unfence-site.yml``): it is a standby
   again, ready for the next failover (a failure here is a warning; the primary serves);
10. once the primary has recorded the run as passed, the offsite's control state follows the
    primary's (PostgreSQL: rebuilt as its standby; SQLite: the offsite's database kept aside,
    the next replication ships copies to it). Only after that verdict: a failback killed between
    the two leaves the offsite's database saying the failover is active, and run again there it
    finds the primary's verdict and only finishes this step; had the offsite followed first, a
    kill before the verdict would leave neither site able to run failback again.

Any failure before step 7 completes lifts the offsite fence again, so service continues there
with its control state; what was swapped in at the primary is not served and the next
failback redoes it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from backup.run import BackupRequest, run_backup
from backup.sources import parse_source
from dc.approvers import Proof
from dc.clock import utcnow
from dc.errors import N_, BcpError, Message, UsageError, os_reason
from dc.failpoint import failpoint
from dc.state import open_state
from failover.approval import confirm_request, record_approval
from failover.cleanup import cleanup_checked
from failover.context import RunContext
from failover.controlchoice import control_plane
from failover.controlplane import ControlPlane, PromotionOrder, record_promotion, state_url
from failover.errors import FailoverRefused
from failover.execution import run_plan
from failover.failover import hooks_for
from failover.hooks import Hooks
from failover.lifecycle import new_run, operator_name, recorded_run, repository_at, run_token
from failover.measure import apply_measurement, missed_targets
from failover.plan import RecoveryPlan, build_plan
from failover.records import RunRecord, active_failover, finish_run, get_run, last_handover, load_document
from failover.recover import RecoveryContext, recover_system, snapshots_by_system
from failover.reports import write_reports
from failover.results import RunResult, to_document
from failover.staging import Staging
from failover.targets import resolve
from replication.ledger import Ledger
from replication.sync import SyncResult


@dataclass(frozen=True)
class FailbackRequest:
    confirmed: bool = False
    approver: str | None = None
    #: the approver's own secret (dc.approvers), never from the command line
    approver_secret: str | None = None
    workers: int | None = None
    #: two-person rule: the operator's enrolled name and own secret (failover/approval.py)
    operator: str | None = None
    operator_secret: str | None = None
    #: the site this bcpctl runs at (``--site``/``$BCPCTL_SITE``): failback runs at the active site
    at_site: str | None = None


def _offsite_source(ctx: RunContext, system_id: str) -> str:
    """The ``KIND:SPEC`` of a system's production copy at the offsite site."""
    system = ctx.config.systems[system_id]
    if system.source.kind == "postgres":
        return f"postgres:{system.restore_dsn}"
    target = resolve(system.restore_dir or "", ctx.config_dir)
    if system.source.kind == "sqlite":
        return f"sqlite:{target / Path(system.source.path or '').name}"
    return f"path:{target}"


def _replicate_home(ctx: RunContext, offsite: str, primary: str) -> SyncResult:
    """Reverse replication, offsite → primary: keyless, signed state only, and never deleting.

    A normal sync deletes, after a delay, what the source no longer holds; in reverse that
    would be the primary's snapshots the offsite never received, so failback never deletes.
    """
    from failover.secondcopy import ship_between

    shipped = ship_between(ctx.config, ctx.config_dir, offsite, primary, ledger=Ledger(ctx.state))
    if problem := shipped.problem():
        raise FailoverRefused(
            N_("not switched back, nothing at {primary} changed: {problem}"), primary=primary, problem=problem
        )
    return shipped


def _preflight(ctx: RunContext, request: FailbackRequest, plan: RecoveryPlan) -> tuple[str, Proof | None]:
    active = active_failover(ctx.state)
    what = {
        "consortium": ctx.config.consortium,
        "from_site": active.target_site if active else None,
        "failover_run": active.id if active else None,
        "at": utcnow().isoformat(),
    }
    approval = confirm_request(ctx.settings.failover, ctx.config.approvers, "failback", request, operator_name(), what)
    if active is None or active.target_site is None:
        here = f" at {request.at_site}" if request.at_site else ""
        raise FailoverRefused(
            N_(
                "no failover is active{here}: nothing to fail back (see 'bcpctl drill list'; failback runs "
                "at the active site: --site or $BCPCTL_SITE)"
            ),
            here=here,
        )
    if request.at_site is not None and request.at_site != active.target_site:
        raise UsageError(
            N_(
                "this bcpctl runs at '{at_site}' (--site, $BCPCTL_SITE) but production runs at "
                "'{target_site}': run failback there, where the live control state is"
            ),
            at_site=request.at_site,
            target_site=active.target_site,
        )
    manual = [s.system for s in plan.steps if s.source_kind == "command"]
    if manual:
        raise FailoverRefused(
            N_("systems with a command source need a manual failback: {manual}"), manual=", ".join(manual)
        )
    return active.target_site, approval


def execute_failback(
    ctx: RunContext,
    request: FailbackRequest,
    *,
    hooks: Hooks | None = None,
    control: ControlPlane | None = None,
    handle_signals: bool = True,
) -> RunResult:
    """The failback of the module docstring. Afterwards ``ctx.state`` is the control state the
    primary took over, where the run is recorded."""
    plan = build_plan(ctx.config)
    offsite, approval = _preflight(ctx, request, plan)
    hooks = hooks or hooks_for(ctx)
    control = control or control_plane(ctx.config, ctx.config_dir)
    primary = ctx.config.primary_site
    if (done := _handed_over(ctx, offsite, primary)) is not None:
        return _follow_only(ctx, control, done, offsite, primary)
    approver = approval.approver if approval else None
    result, token = new_run(
        ctx, "failback", "failback", offsite, plan, target_site=primary, workers=request.workers, approver=approver
    )
    run_id, declared = result.id, result.declared_at
    record_approval(ctx.state, approval, run_id)
    origin = time.monotonic()
    staging = Staging(ctx.state, run_id, token, ctx.config, ctx.config_dir)
    switched = False
    left: Engine | None = None
    with recorded_run(ctx, result, timeout=None, handle_signals=handle_signals) as abort:
        try:
            try:
                result.warnings += control.prepare_handover(offsite, primary, token=token)
            except BcpError as exc:
                raise FailoverRefused(N_("not switched back, nothing changed: {message_}"), message_=exc) from None
            result.phases["prepare"] = round(time.monotonic() - origin, 3)
            fence = hooks.fence(offsite, run_id)
            result.hooks.append(vars(fence))
            if not fence.ok:
                raise FailoverRefused(
                    N_("fencing {offsite} failed, nothing changed: {detail}"), offsite=offsite, detail=fence.detail
                )
            with repository_at(ctx, offsite) as repo:
                for step in plan.steps:
                    abort.check()
                    backup = run_backup(
                        repo,
                        BackupRequest(
                            parse_source(_offsite_source(ctx, step.system)),
                            system=step.system,
                            tenant=step.tenant,
                            tags={"failback": run_id},
                        ),
                    )
                    if backup.errors:
                        raise FailoverRefused(
                            N_("backup of {system} at {offsite} incomplete: {errors}"),
                            system=step.system,
                            offsite=offsite,
                            errors=backup.errors[0],
                        )
            result.phases["backup"] = round(time.monotonic() - origin, 3)
            shipped = _replicate_home(ctx, offsite, primary)
            result.phases["ship"] = round(time.monotonic() - origin, 3)
            result.warnings.append(
                Message(
                    N_("replicated {objects_copied} object(s), {bytes_sent} bytes, {offsite} → {primary}"),
                    objects_copied=shipped.objects_copied,
                    bytes_sent=shipped.bytes_sent,
                    offsite=offsite,
                    primary=primary,
                )
            )
            with repository_at(ctx, primary) as repo:
                snapshots = snapshots_by_system(repo, tag=("failback", run_id))
                rctx = RecoveryContext(repo, snapshots, abort, origin, staging.target)
                result.systems = run_plan(
                    plan, lambda step, group: recover_system(rctx, step, group), workers=result.workers, abort=abort
                )
            failed = [s.system for s in result.systems if not s.ok]
            if failed:
                raise FailoverRefused(
                    N_("not switched back: {failed} did not verify at {primary}"),
                    failed=", ".join(failed[:3]),
                    primary=primary,
                )
            abort.check()
            for system in result.systems:
                step = plan.step(system.system)
                snap = snapshots[system.system][-1]
                kept = staging.swap(step, snap, rctx.targets[system.system])
                if kept:
                    result.warnings.append(
                        Message(
                            N_("{system}: the primary's previous data is kept as {kept}"),
                            system=system.system,
                            kept=kept,
                        )
                    )
            left = _hand_over(ctx, control, result, offsite, primary, token)
            switched = True
            failpoint("failback.after-handover")
            result.phases["switch"] = round(time.monotonic() - origin, 3)
            for system in result.systems:
                apply_measurement(system, declared=declared, rpo_reference=declared, targets_fail=False)
                result.warnings += missed_targets(system)
            back = hooks.failback(primary, run_id)
            result.hooks.append(vars(back))
            if not back.ok:
                raise FailoverRefused(
                    N_("data is back at {primary} but switching endpoints failed: {detail}"),
                    primary=primary,
                    detail=back.detail,
                )
            result.phases["promote"] = round(time.monotonic() - origin, 3)
            # The offsite returns to its normal role: not serving (its load balancers stay in
            # standby) and not fenced, so the next failover can restore into it and promote it.
            lifted = hooks.unfence(offsite, run_id)
            result.hooks.append(vars(lifted))
            if not lifted.ok:
                result.warnings.append(
                    Message(
                        N_(
                            "{offsite} stays fenced ({detail}): run the unfence-site playbook for it "
                            "before the next failover to it"
                        ),
                        offsite=offsite,
                        detail=lifted.detail,
                    )
                )
        finally:
            if not switched and result.hooks:
                resume = hooks.failback(offsite, run_id)
                result.hooks.append(vars(resume))
                result.warnings.append(
                    Message(
                        N_("failback stopped before the switch: {offsite} serves again ({detail})"),
                        offsite=offsite,
                        detail=resume.detail,
                    )
                )
            result.cleanup = cleanup_checked(ctx.state, run_id)
    if result.status == "passed" and left is not None:
        failpoint("failback.before-follow")
        left.dispose()
        followed = control.follow(offsite, of=primary, token=token)
        if followed:
            result.warnings += followed
            _amend(ctx, result)
    return result


def _amend(ctx: RunContext, result: RunResult) -> None:
    """Store what step 10 added to a run whose verdict is already recorded, report files included."""
    try:
        result.reports = write_reports(ctx, result)
    except OSError as exc:
        result.warnings.append(
            Message(
                N_("report files not written: {strerror} ({filename})"), strerror=os_reason(exc), filename=exc.filename
            )
        )
    finish_run(ctx.state, result.id, status=result.status, error=None, document=to_document(result))


def _handed_over(ctx: RunContext, offsite: str, primary: str) -> RunRecord | None:
    """The passed failback recorded at ``primary`` that already ended the failover this site serves, if any.

    Run again after a kill between the primary's verdict and step 10, a full failback would hand
    this site's stale state over once more and move aside the primary's live one, with everything
    written there since."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    url = state_url(ctx.config, primary)
    parsed = make_url(url)
    active = active_failover(ctx.state)
    if active is None or url == state_url(ctx.config, offsite):
        return None
    if parsed.get_backend_name() == "sqlite" and not (parsed.database and Path(parsed.database).is_file()):
        return None  # opening would create an empty database there
    try:
        there = open_state(url)
    except (BcpError, SQLAlchemyError):
        return None  # unreachable: the failback itself says why
    try:
        last = last_handover(there)
        ended = (
            last is not None
            and last.kind == "failback"
            and get_run(there, active.id) is not None
            and last.finished_at is not None
            and active.finished_at is not None
            and last.finished_at > active.finished_at
        )
    except SQLAlchemyError:
        return None
    finally:
        there.dispose()
    return last if ended else None


def _follow_only(ctx: RunContext, control: ControlPlane, done: RunRecord, offsite: str, primary: str) -> RunResult:
    """Step 10 of the failback ``done``, which the primary recorded as passed; afterwards
    ``ctx.state`` is the primary's control state, as after a whole failback."""
    left, ctx.state = ctx.state, open_state(state_url(ctx.config, primary))
    stored = load_document(ctx.state, done.id)
    document = stored[1] if stored else None
    result = RunResult(
        done.id, "failback", "failback", ctx.config.consortium, offsite, done.declared_at, status="passed",
        target_site=primary, finished_at=done.finished_at, operator=done.operator, approver=done.approver,
    )  # fmt: skip
    result.control_plane = (document or {}).get("control_plane")
    result.warnings.append(
        Message(
            N_(
                "failback {id} had already passed at {primary}; it was interrupted before the "
                "control state of {offsite} followed it: only that step was run now"
            ),
            id=done.id,
            primary=primary,
            offsite=offsite,
        )
    )
    left.dispose()
    result.warnings += control.follow(offsite, of=primary, token=run_token(done.id))
    return result


def _hand_over(
    ctx: RunContext, control: ControlPlane, result: RunResult, offsite: str, primary: str, token: str
) -> Engine:
    """Step 7: the primary takes the control state over; the run goes on recording there.
    Returns the offsite's engine, to be closed before the offsite follows the primary."""
    try:
        order = PromotionOrder(lambda: repository_at(ctx, primary), result.declared_at, token)
        promotion = control.hand_over(primary, order, from_site=offsite)
    except BcpError as exc:
        raise FailoverRefused(
            N_("not switched back: the control state did not move to {primary}: {message_}"),
            primary=primary,
            message_=exc,
        ) from None
    left = ctx.state
    ctx.state = open_state(promotion.url)
    record_promotion(ctx.state, promotion, result.id, operator_name())
    result.control_plane = promotion.document()
    result.warnings += promotion.warnings
    return left
