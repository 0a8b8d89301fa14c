"""One provider per subsystem: what each contributes to ``/metrics``, read at scrape time.

A provider (:mod:`monitoring.provider`) takes the scrape's context and yields readings for
families listed in :mod:`monitoring.catalog`. It reads its subsystem's own tables (or calls
its status function) and nothing else, so wiring a new subsystem is one function here plus
one entry in :data:`PROVIDERS`. A provider that finds no data yields nothing: bcpctl never
exports a value it did not read from configuration or from a recorded measurement.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC

from sqlalchemy import func, select

from dc.clock import utcnow
from dc.state import backup_latest, backup_runs
from monitoring import checks, observations, runs
from monitoring.provider import Provider, Reading, SourceContext
from monitoring.timestamps import epoch
from storage.site import site_of_repository
from storage.url import repository_url_key

# -- configuration ----------------------------------------------------------------------------


def targets(ctx: SourceContext) -> Iterator[Reading]:
    """Recovery targets from each municipality's BIA, as configured (ICT-BCP ステップ11)."""
    for system_id, system in ctx.config.systems.items():
        if system.rpo is not None:
            yield Reading("bcp_system_rpo_seconds", (system.tenant, system_id), float(system.rpo))
        if system.rto is not None:
            yield Reading("bcp_system_rto_seconds", (system.tenant, system_id), float(system.rto))


# -- backups (dc.state.backup_runs) -----------------------------------------------------------


#: ``signal`` label of ``bcp_backup_signal_ratio`` -> its ``backup_runs`` column (backup.anomaly.Signals)
_SIGNAL_COLUMNS = {
    "compressibility": "compressibility",
    "type_lost": "type_lost_fraction",
    "new_fraction": "new_fraction",
    "changed_fraction": "changed_fraction",
}


def backups(ctx: SourceContext) -> Iterator[Reading]:
    """One query: ``backup_latest`` holds each system's newest run and newest success."""
    sites = site_of_repository(ctx.config)
    systems = ctx.config.systems
    t = backup_runs.c
    # the newest success's signals: its row by primary key, one join for every system
    query = select(backup_latest, *(t[name] for name in _SIGNAL_COLUMNS.values())).outerjoin(
        backup_runs, backup_runs.c.id == backup_latest.c.ok_run_id
    )
    with ctx.engine.connect() as conn:
        rows = conn.execute(query).all()
    for row in rows:
        site = sites.get(row.repository)
        if site is None or row.system not in systems:
            continue  # an ad-hoc backup to a repository that is not one of the sites, or a retired system
        labels = (site, systems[row.system].tenant, row.system)
        yield Reading("bcp_backup_last_run_ok", labels, 1.0 if row.last_ok else 0.0)
        if row.ok_run_id is None:
            continue
        yield Reading("bcp_backup_anomaly", labels, 1.0 if row.ok_anomaly else 0.0)
        for signal, column in _SIGNAL_COLUMNS.items():
            if (value := getattr(row, column)) is not None:
                yield Reading("bcp_backup_signal_ratio", (*labels, signal), float(value))
        finished = epoch(row.ok_finished_at)
        if finished is not None:
            yield Reading("bcp_backup_last_success_timestamp_seconds", labels, finished)
        yield Reading("bcp_backup_duration_seconds", labels, float(row.ok_seconds or 0.0))
        yield Reading("bcp_backup_read_bytes", labels, float(row.ok_bytes_in or 0))
        yield Reading("bcp_backup_added_bytes", labels, float(row.ok_bytes_added or 0))


# -- repository checks (monitoring.checks) ----------------------------------------------------


def repository_checks(ctx: SourceContext) -> Iterator[Reading]:
    for rec in checks.latest_checks(ctx.engine):
        if rec.site not in ctx.config.sites:
            continue
        labels = (rec.site,)
        yield Reading("bcp_repository_check_ok", labels, 1.0 if rec.ok else 0.0)
        yield Reading("bcp_repository_check_timestamp_seconds", labels, rec.finished_at.timestamp())
        yield Reading("bcp_repository_check_problems", labels, float(rec.problems))
        yield Reading("bcp_repository_check_read_bytes", labels, float(rec.bytes_read))
    for rec in checks.latest_checks(ctx.engine, read_data=True):
        if rec.site in ctx.config.sites:
            yield Reading("bcp_repository_read_data_timestamp_seconds", (rec.site,), rec.finished_at.timestamp())


# -- health checks (monitoring.observations) --------------------------------------------------


def health(ctx: SourceContext) -> Iterator[Reading]:
    config = ctx.config
    newest: dict[str, float] = {}
    for obs in observations.latest(ctx.engine):
        stamp = obs.checked_at.timestamp()
        if obs.kind == "host" and obs.subject in config.hosts and obs.ok is not None:
            host = config.hosts[obs.subject]
            yield Reading("bcp_host_up", (host.site, obs.subject, obs.probe or ""), 1.0 if obs.ok else 0.0)
        elif obs.kind == "repository" and obs.subject in config.sites and obs.ok is not None:
            yield Reading("bcp_repository_up", (obs.subject,), 1.0 if obs.ok else 0.0)
        elif obs.kind == "repository_size" and obs.subject in config.sites and obs.value is not None:
            yield Reading("bcp_repository_size_bytes", (obs.subject,), obs.value)
        elif obs.kind == "filesystem" and obs.subject in config.sites and obs.value is not None:
            yield Reading("bcp_repository_filesystem_avail_bytes", (obs.subject,), obs.value)
            if obs.value2 is not None:
                yield Reading("bcp_repository_filesystem_size_bytes", (obs.subject,), obs.value2)
        elif obs.kind == "source" and obs.subject in config.systems and obs.ok is not None:
            system = config.systems[obs.subject]
            yield Reading("bcp_system_source_up", (system.tenant, obs.subject), 1.0 if obs.ok else 0.0)
        else:
            continue
        newest[obs.kind] = max(newest.get(obs.kind, 0.0), stamp)
    for kind, stamp in sorted(newest.items()):
        yield Reading("bcp_health_check_timestamp_seconds", (kind,), stamp)


# -- the scheduler (monitoring.runs) ----------------------------------------------------------


def scheduler(ctx: SourceContext) -> Iterator[Reading]:
    for stats in runs.read_stats(ctx.engine):
        labels = (stats.job_id,)
        yield Reading("bcp_scheduler_job_runs", labels, float(stats.runs))
        yield Reading("bcp_scheduler_job_failures", labels, float(stats.failures))
        yield Reading("bcp_scheduler_job_missed", labels, float(stats.missed))
        yield Reading("bcp_scheduler_job_consecutive_failures", labels, float(stats.consecutive_failures))
        if stats.last_success_at is not None:
            yield Reading("bcp_scheduler_job_last_success_timestamp_seconds", labels, stats.last_success_at.timestamp())
        if stats.last_seconds is not None:
            yield Reading("bcp_scheduler_job_duration_seconds", labels, stats.last_seconds)


# -- replication (replication.ledger: replication_lag, replication_runs) ------------------------


def replication(ctx: SourceContext) -> Iterator[Reading]:
    from replication import ledger

    sites = site_of_repository(ctx.config)
    systems = ctx.config.systems
    with ctx.engine.connect() as conn:
        for row in conn.execute(select(ledger.lag)):
            site = sites.get(row.target)
            if site is None or row.system not in systems:
                continue
            labels = (site, systems[row.system].tenant, row.system)
            if row.lag_seconds is not None:
                yield Reading("bcp_replication_lag_seconds", labels, float(row.lag_seconds))
            if row.recovery_point_lag_seconds is not None:
                yield Reading("bcp_recovery_point_lag_seconds", labels, float(row.recovery_point_lag_seconds))
            measured = epoch(row.measured_at)
            if measured is not None:
                yield Reading("bcp_recovery_point_measured_timestamp_seconds", labels, measured)
            newest = epoch(row.target_newest)
            if newest is not None:
                yield Reading("bcp_offsite_newest_snapshot_timestamp_seconds", labels, newest)
        r = ledger.runs.c
        ok_query = select(r.target, func.max(r.finished_at)).where(r.ok.is_(True)).group_by(r.target)
        newest_ok = {target: when for target, when in conn.execute(ok_query)}
        any_query = select(r.target, func.max(r.id)).group_by(r.target)
        newest_any = {target: run_id for target, run_id in conn.execute(any_query)}
        for target, last_id in newest_any.items():
            site = sites.get(target)
            if site is None:
                continue
            last = conn.execute(select(r.bytes_sent, r.ok).where(r.id == last_id)).one()
            yield Reading("bcp_replication_last_run_ok", (site,), 1.0 if last.ok else 0.0)
            yield Reading("bcp_replication_sent_bytes", (site,), float(last.bytes_sent or 0))
            finished = epoch(newest_ok.get(target))
            if finished is not None:
                yield Reading("bcp_replication_last_success_timestamp_seconds", (site,), finished)
    yield from _pending(ctx)


def _pending(ctx: SourceContext) -> Iterator[Reading]:
    """Bytes each system's backups added at the primary that its newest snapshot at each offsite
    site does not cover yet: the backlog the next replication has to ship.

    Replication is keyless, so it cannot attribute packs to systems; the primary's
    ``backup_runs`` can (``bytes_added`` is what each backup wrote after deduplication and
    compression). A run whose ``started_at`` is after the target's newest snapshot of the
    system made a snapshot the target lacks: a snapshot's time is taken after its run starts,
    and one system's runs do not overlap. It is an estimate: a chunk shared with another
    system's unreplicated backup counts once, for whichever system wrote it.
    """
    from replication import ledger

    config = ctx.config
    if not config.offsite_sites:
        return
    primary = repository_url_key(config.sites[config.primary_site].repository)
    t = backup_runs.c
    with ctx.engine.connect() as conn:
        for site in config.offsite_sites:
            target = repository_url_key(config.sites[site].repository)
            lag = select(ledger.lag.c.system, ledger.lag.c.target_newest).where(ledger.lag.c.target == target)
            lagged = {row.system: row.target_newest for row in conn.execute(lag)}
            # SQLite compares the stored UTC text: bind UTC too
            there = {system: newest.astimezone(UTC) for system, newest in lagged.items() if newest is not None}
            never = [s for s in config.systems if s not in there]
            # Only runs after the oldest offsite snapshot can be pending: one range read of the
            # (repository, started_at) index, not each system's whole history.
            query = select(t.system, t.started_at, t.bytes_added).where(t.repository == primary, t.ok.is_(True))
            pending: dict[str, tuple[int, int]] = {}
            if there:
                for system_id, started, added in conn.execute(query.where(t.started_at > min(there.values()))):
                    newest = there.get(system_id)
                    if newest is not None and started > newest:
                        runs, total = pending.get(system_id, (0, 0))
                        pending[system_id] = (runs + 1, total + (added or 0))
            if never:  # nothing of theirs reached the site yet: every run is pending, summed in SQL
                totals = (
                    select(t.system, func.count(), func.sum(t.bytes_added))
                    .where(t.repository == primary, t.ok.is_(True), t.system.in_(never))
                    .group_by(t.system)
                )
                pending.update({system_id: (runs, added or 0) for system_id, runs, added in conn.execute(totals)})
            for system_id, system in config.systems.items():
                runs, added = pending.get(system_id, (0, 0))
                if runs or system_id in lagged:
                    yield Reading("bcp_replication_pending_bytes", (site, system.tenant, system_id), float(added))


# -- the active site and the second copy (failover.activesite, failover.protection) ----------


def active_site(ctx: SourceContext) -> Iterator[Reading]:
    from failover.activesite import active_site as read_active
    from failover.protection import protection

    active = read_active(ctx.config, ctx.engine)
    for site in ctx.config.sites:
        yield Reading("bcp_active_site", (site,), 1.0 if site == active.site else 0.0)
        yield Reading("bcp_failed_over", (site,), 1.0 if active.failed_over and site == active.site else 0.0)
    if active.since is not None:
        yield Reading("bcp_active_site_since_timestamp_seconds", (active.site,), active.since.timestamp())
    for system_id, found in protection(ctx.engine, ctx.config, active, utcnow()).items():
        # A system without an RPO has nothing to judge its copy's age by: a copy is all there is to ask.
        covered = found.protected or found.state == "untargeted"
        yield Reading("bcp_system_protected", (ctx.config.systems[system_id].tenant, system_id), float(covered))


# -- the control plane (monitoring.controlplane) ---------------------------------------------


def control_plane(ctx: SourceContext) -> Iterator[Reading]:
    from monitoring.controlplane import readings

    yield from readings(ctx)


# -- drills (failover.records: drill_systems; failover.calendar: overdue) ---------------------

#: statuses that are a verdict on the system (skipped and pending are not)
_DRILL_VERDICTS = ("passed", "failed", "aborted")


def drills(ctx: SourceContext) -> Iterator[Reading]:
    from failover import records
    from failover.calendar import overdue_systems
    from failover.settings import drill_settings

    systems = ctx.config.systems
    d = records.drill_systems.c
    with ctx.engine.connect() as conn:
        verdicts = select(d.system, func.max(d.id)).where(d.status.in_(_DRILL_VERDICTS)).group_by(d.system)
        newest = {system_id: row_id for system_id, row_id in conn.execute(verdicts)}
        for system_id, row_id in newest.items():
            if system_id not in systems:
                continue
            row = conn.execute(select(d.status, d.rto_seconds, d.rpo_seconds).where(d.id == row_id)).one()
            labels = (systems[system_id].tenant, system_id)
            yield Reading("bcp_drill_last_ok", labels, 1.0 if row.status == "passed" else 0.0)
            if row.rto_seconds is not None:
                yield Reading("bcp_drill_rto_seconds", labels, float(row.rto_seconds))
            if row.rpo_seconds is not None:
                yield Reading("bcp_drill_rpo_seconds", labels, float(row.rpo_seconds))
    last = records.last_success(ctx.engine)
    for system_id, when in last.items():
        if system_id in systems and when is not None:
            yield Reading(
                "bcp_drill_last_success_timestamp_seconds", (systems[system_id].tenant, system_id), when.timestamp()
            )
    max_age = drill_settings(ctx.config).max_age
    flagged = {o.system for o in overdue_systems(systems, last, utcnow(), max_age)}
    for system_id, system in systems.items():
        yield Reading("bcp_drill_overdue", (system.tenant, system_id), 1.0 if system_id in flagged else 0.0)


# -- victim-support exports (victim_support.store) and the audit chain (health job) ----------

#: request states as an operator reads them: approved-but-not-yet-built apart from delivered
EXPORT_STATES = ("pending", "approved", "delivered", "denied", "expired")


def exports(ctx: SourceContext) -> Iterator[Reading]:
    from victim_support.settings import load_export_settings
    from victim_support.store import list_requests

    counts = dict.fromkeys(EXPORT_STATES, 0)
    for request in list_requests(ctx.engine, load_export_settings(ctx.config), utcnow()):
        state = "delivered" if request.status == "approved" and request.builds > 0 else request.status
        counts[state] = counts.get(state, 0) + 1
    for state, count in counts.items():
        yield Reading("bcp_export_requests", (state,), float(count))


def rehearsals(ctx: SourceContext) -> Iterator[Reading]:
    """Export rehearsals (drill run --mode export): time to deliver against its RTO, and their age."""
    from victim_support.rehearsalrecords import overdue_tenants, passed_rehearsals
    from victim_support.settings import load_export_settings

    settings = load_export_settings(ctx.config)
    newest = passed_rehearsals(ctx.engine)
    for (tenant, partner), rehearsal in newest.items():
        if tenant in ctx.config.tenants:
            yield Reading("bcp_export_rehearsal_seconds", (tenant, partner), rehearsal.time_to_deliver)
            yield Reading(
                "bcp_export_rehearsal_last_success_timestamp_seconds", (tenant, partner), rehearsal.at.timestamp()
            )
    exporting = [t for t in settings.tenants if t in ctx.config.tenants]
    late = overdue_tenants(exporting, newest, utcnow(), settings.rehearsal.max_age)
    for tenant in exporting:
        yield Reading("bcp_export_rehearsal_rto_seconds", (tenant,), float(settings.rehearsal.rto))
        yield Reading("bcp_export_rehearsal_overdue", (tenant,), 1.0 if tenant in late else 0.0)


def evacuees(ctx: SourceContext) -> Iterator[Reading]:
    from victim_support.notes import located_per_tenant

    located = located_per_tenant(ctx.engine)
    for tenant in ctx.config.tenants:
        yield Reading("bcp_evacuees_located", (tenant,), float(located.get(tenant, 0)))


def audit(ctx: SourceContext) -> Iterator[Reading]:
    for obs in observations.latest(ctx.engine):
        if obs.kind == "audit_chain" and obs.ok is not None:
            yield Reading("bcp_audit_chain_ok", (), 1.0 if obs.ok else 0.0)
            yield Reading("bcp_audit_chain_verified_timestamp_seconds", (), obs.checked_at.timestamp())


# -- maintenance mode (dc.maintenance) --------------------------------------------------------


def maintenance(ctx: SourceContext) -> Iterator[Reading]:
    from dc.maintenance import load_maintenance

    held = load_maintenance(ctx.engine)
    for host_id, host in ctx.config.hosts.items():
        yield Reading("bcp_host_maintenance", (host.site, host_id), 1.0 if host_id in held else 0.0)


#: Every subsystem that feeds /metrics. Wiring another one: write its provider, add it here.
PROVIDERS: dict[str, Provider] = {
    "config": targets,
    "backup": backups,
    "repository_check": repository_checks,
    "health": health,
    "scheduler": scheduler,
    "replication": replication,
    "site": active_site,
    "control_plane": control_plane,
    "drill": drills,
    "maintenance": maintenance,
    "export": exports,
    "export_rehearsal": rehearsals,
    "audit": audit,
    "evacuees": evacuees,
}
