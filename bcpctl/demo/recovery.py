"""What the story reads from the failover engine: one town's recovery plan, each system's
measured RTO and RPO, and the failover report printed to PDF."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def town_plan(config: Any, tenant: str) -> dict[str, Any]:
    """The recovery plan of every system of ``tenant``, as the failover runs it (failover.plan)."""
    from failover.plan import build_plan, select_systems

    plan = build_plan(config, select_systems(config, tenant=tenant))
    groups = [
        {
            "tier": group[0].tier,
            "systems": [
                {
                    "system": s.system,
                    "number": config.systems[s.system].number,
                    "group": config.systems[s.system].group,
                    "business": s.business,
                    "rpo_seconds": s.rpo,
                    "rto_seconds": s.rto,
                    "depends_on": list(s.depends_on),
                }
                for s in group
            ],
        }
        for group in plan.groups
    ]
    return {"tenant": tenant, "name": config.tenants[tenant].name, "systems": len(plan.steps), "groups": groups}


def measured(system: Any) -> dict[str, Any]:
    return {
        "tenant": system.tenant,
        "system": system.system,
        "business": system.business,
        "tier": system.tier,
        "snapshot": (system.snapshot_id or "")[:12],
        "rto_seconds": system.rto_seconds,
        "rto_target_seconds": system.rto_target,
        "rpo_seconds": system.rpo_seconds,
        "rpo_target_seconds": system.rpo_target,
        "rto_met": system.rto_met,
        "rpo_met": system.rpo_met,
        "bytes": system.bytes,
        "verified": system.ok,
    }


def printed(html: str) -> str:
    """The failover's HTML report printed to PDF beside it; "" where no Chromium is installed (the demo needs none)."""
    from dc.printing import chromium
    from failover.report_pdf import print_pdf

    if not html or chromium() is None:
        return ""
    page = Path(html)
    return str(print_pdf(page.read_text(encoding="utf-8"), page.with_suffix(".pdf")))
