"""The recovery plan as an operator reads it before a disaster: order, targets, exposure now.

For each system: its group and dependencies, its RPO/RTO targets, and the newest snapshot at
the offsite site with its age — the RPO a disaster would cost right now. Reading the
offsite repository needs the key, as a real recovery would; ``targets_missing`` lists the
systems that could not be drilled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from backup.snapshot import Snapshot
from dc.clock import utcnow
from dc.errors import BcpError, message_of
from failover.context import RunContext
from failover.lifecycle import repository_at
from failover.measure import exposure
from failover.plan import build_plan, select_systems
from failover.recover import snapshots_by_system


def plan_overview(
    ctx: RunContext,
    *,
    site: str | None = None,
    tenant: str | None = None,
    systems: Sequence[str] = (),
    escrow: Sequence[str] = (),
) -> dict[str, Any]:
    plan = build_plan(ctx.config, select_systems(ctx.config, tenant=tenant, systems=systems))
    site = ctx.site(site)
    now = utcnow()
    newest: dict[str, Snapshot] = {}
    error = None
    try:
        with repository_at(ctx, site, escrow) as repo:
            newest = {system: snaps[-1] for system, snaps in snapshots_by_system(repo).items()}
    except BcpError as exc:
        error = message_of(exc)
    groups = []
    for number, group in enumerate(plan.groups, start=1):
        rows = []
        for step in group:
            rows.append(
                {
                    "system": step.system,
                    "tenant": step.tenant,
                    "business": step.business,
                    "tier": step.tier,
                    "depends_on": list(step.depends_on),
                    "as_dependency": step.as_dependency,
                    "source_kind": step.source_kind,
                    "rpo_target": step.rpo,
                    "rto_target": step.rto,
                    "drillable": step.rpo is not None and step.rto is not None,
                    "newest_offsite": exposure(newest.get(step.system), now, step.rpo) if error is None else None,
                }
            )
        groups.append({"group": number, "tier": group[0].tier, "systems": rows})
    return {
        "consortium": ctx.config.consortium,
        "site": site,
        "as_of": now.isoformat(),
        "workers": ctx.settings.workers,
        "groups": groups,
        "targets_missing": [s.system for s in plan.steps if s.rpo is None or s.rto is None],
        "error": error,
    }
