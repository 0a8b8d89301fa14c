"""The readiness drill: everything a real recovery needs is in place, and nothing is changed.

Veeam VRO runs a readiness check before every plan; pgBackRest's ``verify`` does not warn
that the newest backup is too old (pgbackrest#1918). This one checks, per system, that the
newest offsite snapshot is within the RPO (the RPO a disaster would cost right now), and
for the run: the offsite repository opens and its structure verifies, every restore target
(drill server and directory, failover targets) is reachable, the sandbox cannot reach
production (:mod:`failover.isolation`), production's steady-state probe passes, and no
earlier drill left sandboxes behind. It creates nothing, so there is nothing to clean up.

While failed over it checks the active site (:mod:`failover.activesite`): the production
targets are occupied by what runs there, so instead of "empty" it checks that a second copy
of every system exists within its RPO (:mod:`failover.protection`).
"""

from __future__ import annotations

import os
from pathlib import Path

from backup.check import check_repository
from dc.clock import jst_text, utcnow
from dc.duration import format_duration
from dc.errors import N_, Message, joined, library_reason
from failover.activesite import ActiveSite, active_site, drill_notice
from failover.context import RunContext
from failover.drillrequest import DrillRequest
from failover.isolation import production_endpoints, route_isolated, sandbox_not_production
from failover.lifecycle import new_run, recorded_run, repository_at
from failover.measure import advice
from failover.plan import RecoveryPlan
from failover.protection import protection
from failover.records import stale_runs
from failover.recover import new_result, snapshots_by_system
from failover.resources import leftover_runs
from failover.results import Check, RunResult
from failover.targets import target_problems


def _pg_reachable(what: str, dsn: str) -> Check:
    import psycopg

    from backup.sources import redact_dsn

    try:
        with psycopg.connect(dsn, connect_timeout=10) as conn:
            conn.execute("SELECT 1")
        return Check(f"{what} reachable", True, redact_dsn(dsn))
    except psycopg.Error as exc:
        reason = library_reason(exc)
        return Check(f"{what} reachable", False, Message(N_("{name}: {reason}"), name=redact_dsn(dsn), reason=reason))


def _dir_writable(what: str, path: Path) -> Check:
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    ok = existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)
    return Check(
        f"{what} writable",
        ok,
        str(path)
        if ok
        else Message(N_("{path}: {existing} is not a writable directory"), path=path, existing=existing),
    )


def _target_checks(ctx: RunContext, site_name: str, plan: RecoveryPlan, active: ActiveSite) -> list[Check]:
    site = ctx.config.sites[site_name]
    # a postgres-wal system is drilled into a sandbox database like a dumped one
    kinds = {"postgres" if s.source_kind == "postgres-wal" else s.source_kind for s in plan.steps}
    checks = []
    if "postgres" in kinds:
        checks.append(
            _pg_reachable("drill server", site.drill_dsn)
            if site.drill_dsn
            else Check(
                "drill server reachable", False, Message(N_("site '{site_name}' has no drill_dsn"), site_name=site_name)
            )
        )
    if kinds - {"postgres"}:
        checks.append(
            _dir_writable("drill directory", Path(site.drill_dir))
            if site.drill_dir
            else Check(
                "drill directory writable",
                False,
                Message(N_("site '{site_name}' has no drill_dir"), site_name=site_name),
            )
        )
    if active.failed_over:
        checks.extend(_failed_over_checks(ctx, active))
        return checks
    # A failover would fail on these later, at the worst moment: configured, reachable and empty.
    problems = target_problems(ctx.config, plan, ctx.config_dir)
    checks.append(
        Check(
            "failover targets ready",
            not problems,
            joined(problems[:3]) or Message(N_("configured, reachable, empty")),
        )
    )
    return checks


def _failed_over_checks(ctx: RunContext, active: ActiveSite) -> list[Check]:
    """While failed over the production targets hold production (they must not be empty), and
    what a recovery from a disaster at the active site needs is the second copy."""
    since = jst_text(active.since) if active.since else "?"
    checks = [
        Check(
            "failover targets in use by production",
            True,
            Message(
                N_("production runs at {site} since {since} (run {run_id}); 'bcpctl failback' brings it home"),
                site=active.site,
                since=since,
                run_id=active.run_id,
            ),
        )
    ]
    found = protection(ctx.state, ctx.config, active, utcnow())
    missing = [p for p in found.values() if not p.protected]
    detail = (
        Message(
            N_("{count} of {count2} system(s) without a copy within RPO at {value} (first: {system}: {reason})"),
            count=len(missing),
            count2=len(found),
            value=", ".join(active.second_copy) or "—",
            system=missing[0].system,
            reason=missing[0].reason,
        )
        if missing
        else Message(N_("every system has a copy within its RPO at {names}"), names=", ".join(active.second_copy))
    )
    checks.append(Check("second copy of the active site", not missing, detail))
    return checks


def check_readiness(ctx: RunContext, request: DrillRequest, plan: RecoveryPlan) -> RunResult:
    site = ctx.site(request.site)
    active = active_site(ctx.config, ctx.state)
    result, _token = new_run(
        ctx, "drill", "readiness", site, plan, run_id=request.run_id, operator=request.operator, tenant=request.tenant
    )
    if notice := drill_notice(active, site):
        result.warnings.append(notice)
    declared = result.declared_at
    with recorded_run(ctx, result, timeout=request.timeout, handle_signals=False) as abort:
        if probe := ctx.settings.steady_state:
            from failover.abort import run_probe

            ok, detail = run_probe(probe)
            result.checks.append(Check("steady state of production", ok, detail))
        leftovers = sorted({r.id for r in stale_runs(ctx.state, declared)} | set(leftover_runs(ctx.state)))
        result.checks.append(
            Check(
                "no sandboxes left by earlier drills",
                not leftovers,
                Message(N_("runs {runs} left sandboxes: run 'bcpctl drill cleanup'"), runs=", ".join(leftovers[:3]))
                if leftovers
                else Message(N_("none")),
            )
        )
        result.checks.extend(sandbox_not_production(ctx.config, ctx.config.sites[site], ctx.config_dir))
        if ctx.settings.sandbox_netns:
            for endpoint in production_endpoints(ctx.config):
                result.checks.append(route_isolated(ctx.settings.sandbox_netns, endpoint))
        else:
            result.warnings.append(
                Message(N_("network isolation of the sandbox not checked: set drills.sandbox_netns"))
            )
        for check in result.checks:
            if check.ok and "compete with production" in check.detail:
                result.warnings.append(check.detail)
        result.checks.extend(_target_checks(ctx, site, plan, active))
        abort.check()
        with repository_at(ctx, site, request.escrow) as repo:
            result.checks.append(Check("offsite repository opens", True, repo.backend.url))
            report = check_repository(repo)
            if report.ok or not report.problems:
                detail = Message(
                    N_("{snapshots} snapshots, {packs} packs"), snapshots=report.snapshots, packs=report.packs
                )
            else:
                first = report.problems[0]
                detail = Message(
                    N_("{count} problem(s), first: {object}: {reason}"),
                    count=len(report.problems),
                    object=first.object,
                    reason=first.message,
                )
            result.checks.append(
                Check(
                    "offsite repository verifies",
                    report.ok,
                    detail,
                )
            )
            newest = {system: snaps[-1] for system, snaps in snapshots_by_system(repo).items()}
        for number, group in enumerate(plan.groups, start=1):
            for step in group:
                system = new_result(step, number)
                snap = newest.get(step.system)
                if snap is None:
                    system.status, system.error = "failed", Message(N_("no offsite snapshot"))
                    system.fix = advice("NoSnapshot")
                else:
                    system.snapshot_id, system.snapshot_time, system.source_kind = snap.id, snap.time, snap.source_kind
                    system.rpo_seconds = round(max(0.0, (declared - snap.time).total_seconds()), 1)
                    system.rpo_met = step.rpo is not None and system.rpo_seconds <= step.rpo
                    system.status = "passed" if system.rpo_met else "failed"
                    if not system.rpo_met:
                        system.error = Message(
                            N_("newest offsite snapshot is {age} old, RPO target {target}"),
                            age=format_duration(system.rpo_seconds),
                            target=format_duration(step.rpo or 0),
                        )
                        system.fix = advice("RpoExceeded")
                result.systems.append(system)
    return result
