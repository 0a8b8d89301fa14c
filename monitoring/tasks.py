"""What each kind of scheduled job does: one function per kind, over the core packages.

A task raises :class:`JobFailed` (or any :class:`~dc.errors.BcpError`) when its work failed;
the runner records the outcome. Tasks write their own results where the subsystem keeps
them (``backup_runs``, ``repository_checks``, ``health_observations``), so the metrics read
the same rows an operator's CLI would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from backup.keyring import KeyRing
from dc.clock import utcnow
from dc.config import Consortium
from dc.errors import N_, Message, ProblemFound
from failover.activesite import ActiveSite
from monitoring import checks, health, observations, outcomes
from monitoring.schedule import DEFAULT_CHECK_SLICES, JobSpec


class JobFailed(ProblemFound):
    """The job ran and its work failed (a backup error, a damaged repository)."""


@dataclass
class JobContext:
    engine: Engine
    #: the configuration as it holds now: while failed over, sources are where production runs
    #: (:func:`failover.activesite.serving_config`)
    config: Consortium
    config_dir: Path
    check_slices: int = DEFAULT_CHECK_SLICES
    probe_timeout: float = 3.0
    #: the site serving production; ``None``: the configured primary
    active: ActiveSite | None = None
    #: repositories unlocked once for the life of the service (:mod:`backup.keyring`)
    keyring: KeyRing | None = None


Task = Callable[[JobContext, JobSpec], str]


def backup(ctx: JobContext, spec: JobSpec) -> str:
    """One system into the active site's repository, recorded in ``backup_runs`` — also when the
    repository could not even be opened (:mod:`monitoring.outcomes`)."""
    from backup.jobs import backup_systems, site_repository

    site = spec.site or ctx.config.primary_site
    system = spec.required_system()
    started = utcnow()
    outcome = None
    try:
        with site_repository(ctx.config, site, ctx.config_dir, keyring=ctx.keyring) as repo:
            (outcome,) = backup_systems(ctx.config, repo, [system], state=ctx.engine, config_dir=ctx.config_dir)
    except Exception as exc:
        if outcome is None and system in ctx.config.systems:
            message = outcomes.failure_message(exc)
            outcomes.record_backup_failure(ctx.engine, ctx.config, ctx.config_dir, site, system, started, message)
        raise
    if not outcome.ok:
        raise JobFailed(N_("backup of {system} failed: {error}"), system=system, error=outcome.error)
    result = outcome.result
    return f"snapshot {result.snapshot_id[:8]}, {result.bytes_added} bytes added" if result else "ok"


def check(ctx: JobContext, spec: JobSpec) -> str:
    """Structure in full plus the next rolling read-data slice; a repository that cannot be
    opened counts as a failed check (nobody could restore from it either)."""
    from backup.check import check_repository
    from backup.jobs import site_repository

    site = spec.site or ""
    started = utcnow()
    subset = checks.next_subset(checks.last_subset(ctx.engine, site), ctx.check_slices)
    try:
        with site_repository(ctx.config, site, ctx.config_dir, keyring=ctx.keyring) as repo:
            report = check_repository(repo, read_data=True, subset=subset)
    except Exception as exc:
        detail = outcomes.failure_message(exc)
        rec = checks.CheckRecord(site, started, utcnow(), False, True, None, problems=1, detail=detail)
    else:
        rec = checks.report_record(site, started, utcnow(), report, subset=subset, read_data=True)
    checks.record_check(ctx.engine, rec)
    if not rec.ok:
        raise JobFailed(
            N_("check of site {site} found {problems} problem(s): {detail}"),
            site=site,
            problems=rec.problems,
            detail=rec.detail,
        )
    return f"slice {subset[0]}/{subset[1]}: {rec.packs_read} packs, {rec.bytes_read} bytes read, no problems"


def health_checks(ctx: JobContext, spec: JobSpec) -> str:
    """Probe everything once; unreachable things are results, not job failures."""
    previous = {obs.subject: obs.checked_at for obs in observations.latest(ctx.engine) if obs.kind == "repository_size"}
    found = health.probe_all(ctx.config, ctx.config_dir, timeout=ctx.probe_timeout, last_size_at=previous)
    found.append(health.verify_audit_chain(ctx.engine))
    observations.record(ctx.engine, found)
    for kind, subjects in (
        ("host", set(ctx.config.hosts)),
        ("source", set(ctx.config.systems)),
        ("repository", set(ctx.config.sites)),
        ("repository_size", set(ctx.config.sites)),
        ("filesystem", set(ctx.config.sites)),
    ):
        observations.forget_except(ctx.engine, kind, subjects)
    down = [f"{obs.kind} {obs.subject}" for obs in found if obs.ok is False]
    return f"{len(found)} probes, {len(down)} failing" + (f" ({', '.join(down[:5])})" if down else "")


def replicate(ctx: JobContext, spec: JobSpec) -> str:
    """One replication cycle from the active site to one site of its second copy, the control
    state included (:mod:`failover.controlplane`).

    Normally the primary's signed state goes to each offsite site; while failed over, the
    active offsite's goes to ``drills.failover.second_copy`` (:mod:`failover.secondcopy`). The
    control state goes with it: an encrypted copy of the active site's SQLite database taken
    with the backups' passphrase, then shipped keyless like every snapshot; or, on PostgreSQL, a
    heartbeat through the streaming standby. The replication ledger records the run and each
    system's lag — also a run that failed before the sync could record it
    (:mod:`monitoring.outcomes`).
    """
    from failover.controlchoice import control_plane
    from failover.controlplane import Cycle
    from replication.ledger import Ledger

    source = ctx.active.site if ctx.active is not None else ctx.config.primary_site
    target = spec.site or ""
    started = utcnow()
    try:
        if ctx.keyring is not None and ctx.keyring.unsigned(due_only=False):
            # the backups' manifest is signed in batches: sign it now, so this cycle ships them
            from backup.jobs import site_repository

            with site_repository(ctx.config, source, ctx.config_dir, keyring=ctx.keyring, sign_now=True):
                pass
        plane = control_plane(ctx.config, ctx.config_dir)
        shipped = plane.replicate(Cycle(utcnow(), [target], ctx.active, Ledger(ctx.engine)))
        if not shipped.runs:  # the sync itself never ran, so nothing recorded it
            raise JobFailed(
                shipped.problems[0] if shipped.problems else Message(N_("replication to {site} failed"), site=target)
            )
        (result,) = shipped.runs
    except Exception as exc:
        if target in ctx.config.sites:
            message = outcomes.failure_message(exc)
            outcomes.record_replication_failure(ctx.engine, ctx.config, source, target, started, message)
        raise
    if not result.ok:
        raise JobFailed(result.problem() or Message(N_("replication to {site} failed"), site=spec.site))
    if shipped.problems:
        raise JobFailed(shipped.problems[0])  # the systems shipped; the control state did not
    copy = f"control state copied {shipped.copy.time.isoformat(timespec='seconds')}; " if shipped.copy else ""
    if (newest := shipped.newest.get(target)) is not None and not shipped.copy:
        copy = f"control state at {target} as of {newest.time.isoformat(timespec='seconds')}; "
    return (
        f"{copy}manifest {result.manifest_sequence}: {result.objects_copied} objects, {result.bytes_sent} bytes "
        f"sent, {result.objects_present} already there"
    )


def drill(ctx: JobContext, spec: JobSpec) -> str:
    """An isolated drill of every system at the offsite site (the active site while failed
    over: :meth:`failover.lifecycle.RunContext.drill_site`), unless today is a blackout day."""
    from failover.context import RunContext
    from failover.drill import run_drill
    from failover.drillrequest import DrillRequest
    from failover.schedule import may_drill_now

    run_ctx = RunContext.create(ctx.config, ctx.config_dir, ctx.engine)
    allowed, reason = may_drill_now(run_ctx)
    if not allowed:
        return f"not run: {reason}"
    # Signal handlers belong to the service's main thread; the drill's timeout still applies.
    result = run_drill(run_ctx, DrillRequest(mode="isolated"), handle_signals=False)
    status, problem = result.verdict()
    if status != "passed":
        raise JobFailed(N_("drill {id} {status}: {problem}"), id=result.id, status=status, problem=problem)
    return f"drill {result.id} passed: {len(result.systems)} systems"


#: Every kind of job this build can run; the planner schedules only these.
TASKS: dict[str, Task] = {
    "backup": backup,
    "check": check,
    "health": health_checks,
    "replicate": replicate,
    #: the control state on its own schedule, where replication is rarer than its RPO (same cycle)
    "control": replicate,
    "drill": drill,
}
