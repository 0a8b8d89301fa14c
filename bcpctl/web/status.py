"""What the operator dashboard shows: the active site, systems, backups, replication lag, drills — read, never changed.

Everything comes from the control database (what the backup, replication and drill runs
recorded) and the configuration; nothing here opens a repository or touches a key, so the
page stays fast and works when a site is unreachable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select

from dc.config import Consortium
from dc.state import backup_runs
from dc.storedmessages import from_columns
from failover import records
from failover.activesite import active_site
from monitoring.recoverability import Light
from monitoring.status import system_lights
from replication import ledger
from storage.url import repository_url_key


@dataclass(frozen=True)
class SystemStatus:
    id: str
    tenant: str
    business: str
    tier: int
    rpo_seconds: int | None
    rto_seconds: int | None
    light: Light
    last_backup: dict[str, Any] | None
    replication: list[dict[str, Any]]
    last_drill: dict[str, Any] | None


@dataclass(frozen=True)
class TenantStatus:
    id: str
    name: str
    light: str
    systems: list[SystemStatus]


@dataclass(frozen=True)
class ConsortiumStatus:
    consortium: str
    as_of: datetime
    drill_fresh_seconds: int
    sites: list[dict[str, Any]]
    tenants: list[TenantStatus]
    drills: list[dict[str, Any]]
    latest_report: str | None
    counts: dict[str, int] = field(default_factory=dict)
    #: the site serving production: ``site``, ``name``, ``failed_over``, ``since``, ``second_copy``, ``protected``
    active: dict[str, Any] = field(default_factory=dict)


def _last_backups(state: Engine) -> dict[str, dict[str, Any]]:
    newest = select(backup_runs.c.system, func.max(backup_runs.c.id).label("id")).group_by(backup_runs.c.system)
    newest_ok = (
        select(backup_runs.c.system, func.max(backup_runs.c.finished_at).label("at"))
        .where(backup_runs.c.ok.is_(True))
        .group_by(backup_runs.c.system)
    )
    with state.connect() as conn:
        ok_at = {row.system: row.at for row in conn.execute(newest_ok)}
        ids = [row.id for row in conn.execute(newest)]
        rows = conn.execute(select(backup_runs).where(backup_runs.c.id.in_(ids))).all() if ids else []
    return {
        row.system: {
            "at": row.finished_at or row.started_at,
            "ok": bool(row.ok),
            "snapshot": (row.snapshot_id or "")[:16] or None,
            "error": from_columns(row.error, row.error_message),
            "last_success": ok_at.get(row.system),
        }
        for row in rows
    }


def _replication(state: Engine, config: Consortium) -> dict[str, list[dict[str, Any]]]:
    sites = {repository_url_key(site.repository): name for name, site in config.sites.items()}
    found: dict[str, list[dict[str, Any]]] = {}
    with state.connect() as conn:
        for row in conn.execute(select(ledger.lag)):
            site = sites.get(row.target)
            if site is None:
                continue
            found.setdefault(row.system, []).append(
                {
                    "site": site,
                    "role": config.sites[site].role,
                    "target_newest": row.target_newest,
                    "source_newest": row.source_newest,
                    "lag_seconds": row.lag_seconds,
                    "measured_at": row.measured_at,
                }
            )
    return found


def consortium_status(config: Consortium, state: Engine, *, fresh: int, now: datetime) -> ConsortiumStatus:
    backups = _last_backups(state)
    lags = _replication(state, config)
    history = records.system_history(state, list(config.systems), limit=20)
    active = active_site(config, state)
    protected, lights = system_lights(state, config, active, fresh=fresh, now=now)
    tenants = []
    for tenant_id, tenant in config.tenants.items():
        systems = []
        for system_id, system in config.systems.items():
            if system.tenant != tenant_id:
                continue
            light = lights[system_id]
            last = next((r for r in reversed(history.get(system_id, [])) if r["mode"] != "readiness"), None)
            systems.append(
                SystemStatus(
                    system_id,
                    tenant_id,
                    system.business,
                    system.tier,
                    system.rpo,
                    system.rto,
                    light,
                    backups.get(system_id),
                    lags.get(system_id, []),
                    last,
                )
            )
        worst = max((s.light.level for s in systems), key=["green", "yellow", "red"].index, default="green")
        tenants.append(TenantStatus(tenant_id, tenant.name, worst, systems))
    runs = records.list_runs(state, limit=10)
    drills = [
        {
            "id": r.id,
            "kind": r.kind,
            "mode": r.mode,
            "status": r.status,
            "site": r.site,
            "declared_at": r.declared_at,
            "finished_at": r.finished_at,
            "error": r.error,
        }
        for r in runs
    ]
    latest = next((r.id for r in runs if r.kind == "drill" and r.status != "running"), None)
    levels = [s.light.level for t in tenants for s in t.systems]
    counts = {level: levels.count(level) for level in ("green", "yellow", "red")}
    sites = [
        {"id": k, "name": s.name or k, "prefecture": s.prefecture, "role": s.role, "repository": s.repository}
        for k, s in config.sites.items()
    ]
    banner = {
        "site": active.site,
        "name": config.sites[active.site].name or active.site,
        "failed_over": active.failed_over,
        "since": active.since,
        "run_id": active.run_id,
        "second_copy": list(active.second_copy),
        "protected": all(p.protected for p in protected.values()),
    }
    return ConsortiumStatus(config.consortium, now, fresh, sites, tenants, drills, latest, counts, banner)
