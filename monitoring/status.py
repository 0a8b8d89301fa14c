"""The one-glance answer for the operator at 03:00: where production runs, and is it protected?

``bcpctl status`` and the dashboard's banner read this. Per consortium: the active site and
since when (:mod:`failover.activesite`), where its second copy goes and whether every system
has one within its RPO (:mod:`failover.protection`). Per system: where it runs, its newest
recovery point at the active site, its protection, and the traffic light with its reasons
(:mod:`monitoring.recoverability`). Everything comes from the control database and the
configuration; nothing opens a repository, so it answers when a site is unreachable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine, func, select

from dc.config import Consortium
from dc.errors import N_, Message
from dc.state import backup_runs, naming_damaged_rows
from failover import records
from failover.activesite import ActiveSite, active_site, stranded_systems
from failover.protection import Protection, protection
from failover.settings import drill_settings
from monitoring.recoverability import DrillFact, Light, judge
from replication import ledger
from storage.url import repository_url_key


@dataclass(frozen=True)
class RecoveryPoint:
    """The newest snapshot of a system in the active site's repository."""

    site: str
    time: datetime | None
    age_seconds: float | None


@dataclass(frozen=True)
class SystemState:
    id: str
    tenant: str
    business: str
    tier: int
    rpo_seconds: int | None
    rto_seconds: int | None
    #: the site it runs at; ``None`` when bcpctl cannot place it (a command source while failed over)
    running_at: str | None
    recovery_point: RecoveryPoint
    second_copy: Protection
    protected: bool
    light: Light


@dataclass(frozen=True)
class SecondCopySummary:
    #: where the second copy goes now
    sites: tuple[str, ...]
    #: every system has a copy there within its RPO
    protected: bool
    #: the oldest of the systems' newest copies: what a disaster now would cost at most
    oldest: datetime | None
    oldest_age_seconds: float | None
    unprotected: list[str]


@dataclass(frozen=True)
class SiteStatus:
    consortium: str
    as_of: datetime
    active_site: str
    active_site_name: str
    primary_site: str
    failed_over: bool
    #: when the active site began serving (``None``: the primary, never handed over)
    since: datetime | None
    #: the failover or failback run that made it so
    run_id: str | None
    second_copy: SecondCopySummary
    systems: list[SystemState]
    counts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def recovery_points(state: Engine, config: Consortium, site: str) -> dict[str, datetime]:
    """Per system, the newest snapshot known in ``site``'s repository: successful backups into it
    (a snapshot's time is taken as its run starts), replication to or from it, and what drills
    at it and a failover into it restored from it."""
    key = repository_url_key(config.sites[site].repository)
    newest: dict[str, datetime] = {}

    def keep(system: str, when: datetime | None) -> None:
        when = _aware(when)
        if when is not None and (system not in newest or when > newest[system]):
            newest[system] = when

    t, lag = backup_runs.c, ledger.lag.c
    damage = naming_damaged_rows(state, backup_runs, ledger.lag, records.drill_runs, records.drill_systems)
    with state.connect() as conn, damage:
        query = select(t.system, func.max(t.started_at)).where(t.repository == key, t.ok.is_(True)).group_by(t.system)
        for system, when in conn.execute(query):
            keep(system, when)
        for row in conn.execute(select(ledger.lag).where((lag.source == key) | (lag.target == key))):
            keep(row.system, row.source_newest if row.source == key else row.target_newest)
        runs, restored = records.drill_runs.c, records.drill_systems.c
        at_site = ((runs.kind == "drill") & (runs.site == site)) | (
            (runs.kind == "failover") & (runs.target_site == site)
        )
        query = (
            select(restored.system, func.max(restored.snapshot_time))
            .join(records.drill_runs, runs.id == restored.run_id)
            .where(at_site, restored.snapshot_time.is_not(None))
            .group_by(restored.system)
        )
        for system, when in conn.execute(query):
            keep(system, when)
    return newest


def drill_facts(state: Engine, systems: list[str]) -> dict[str, list[DrillFact]]:
    """Each system's recovery drills, oldest first: a readiness check proves no restore and measures no RTO."""
    history = records.system_history(state, systems, limit=20)
    return {
        system: [
            DrillFact(r["status"], r["finished_at"], r["rto_seconds"], r["rto_target"])
            for r in rows
            if r["mode"] != "readiness" and r["finished_at"] is not None
        ]
        for system, rows in history.items()
    }


def system_lights(
    state: Engine, config: Consortium, active: ActiveSite, *, fresh: int, now: datetime
) -> tuple[dict[str, Protection], dict[str, Light]]:
    """Each system's protection and traffic light while ``active`` serves."""
    protected = protection(state, config, active, now)
    facts = drill_facts(state, list(config.systems))
    lights = {
        system_id: judge(
            protection=protected[system_id],
            active=active,
            rto=system.rto,
            drills=facts.get(system_id, []),
            fresh=fresh,
            now=now,
        )
        for system_id, system in config.systems.items()
    }
    return protected, lights


def _warnings(state: Engine, config: Consortium, active: ActiveSite) -> list[str]:
    found = []
    newest = records.list_runs(state, kind="failover", limit=1)
    if newest and newest[0].id != active.run_id and newest[0].status != "passed":
        run = newest[0]
        if run.status == "running":
            found.append(f"フェイルオーバー実行中 / a failover to {run.target_site} is running (run {run.id})")
        elif active.run_id is None or (active.since is not None and run.declared_at > active.since):
            # the run's stored error in the reader's language (dc.storedmessages), inside the bilingual line
            found.append(
                Message(
                    N_(
                        "直近のフェイルオーバー / the newest failover (run {id}) {status}: "
                        "{error}; {site} may still be fenced"
                    ),
                    status=run.status,
                    id=run.id,
                    error=run.error or Message(N_("see its report")),
                    site=config.primary_site,
                )
            )
    for system_id in stranded_systems(config, active):
        found.append(
            f"{system_id}: コマンド型のため所在不明 / command source: bcpctl cannot locate or back it up "
            f"at {active.site}; back it up by hand"
        )
    return found


def site_status(config: Consortium, state: Engine, *, now: datetime, fresh: int | None = None) -> SiteStatus:
    """The status of the consortium as the control database says at ``now``."""
    active = active_site(config, state)
    fresh = fresh if fresh is not None else drill_settings(config).max_age
    protected, lights = system_lights(state, config, active, fresh=fresh, now=now)
    points = recovery_points(state, config, active.site)
    stranded = set(stranded_systems(config, active))
    systems = []
    for system_id, system in config.systems.items():
        when = points.get(system_id)
        age = None if when is None else round(max(0.0, (now - when).total_seconds()), 1)
        copy = protected[system_id]
        systems.append(
            SystemState(
                system_id,
                system.tenant,
                system.business,
                system.tier,
                system.rpo,
                system.rto,
                None if system_id in stranded else active.site,
                RecoveryPoint(active.site, when, age),
                copy,
                copy.protected,
                lights[system_id],
            )
        )
    dated = [(s.second_copy.newest, s.second_copy) for s in systems if s.second_copy.newest is not None]
    copies = [copy for _, copy in dated]
    oldest = min(dated, key=lambda d: d[0], default=(None, None))[1]
    summary = SecondCopySummary(
        active.second_copy,
        all(s.protected for s in systems),
        None if oldest is None or len(copies) < len(systems) else oldest.newest,
        None if oldest is None or len(copies) < len(systems) else oldest.age_seconds,
        [s.id for s in systems if not s.protected],
    )
    levels = [s.light.level for s in systems]
    site = config.sites[active.site]
    return SiteStatus(
        config.consortium,
        now,
        active.site,
        site.name or active.site,
        active.primary,
        active.failed_over,
        active.since,
        active.run_id,
        summary,
        systems,
        {level: levels.count(level) for level in ("green", "yellow", "red")},
        _warnings(state, config, active),
    )
