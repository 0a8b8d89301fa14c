"""What the scheduler asks before a drill, and what monitoring flags: blackouts and overdue systems.

The pure rules are in :mod:`failover.calendar`; this module feeds them the configuration and
the control database. ``bcpctl serve`` (monitoring) calls :func:`may_drill_now` before its
drill job and exports :func:`drill_due`'s overdue list as the DrillOverdue metric.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dc.clock import utcnow
from failover.calendar import blackout_on, next_drill_window, overdue_systems
from failover.context import RunContext
from failover.records import last_success


def may_drill_now(ctx: RunContext, now: datetime | None = None) -> tuple[bool, str | None]:
    """``(True, None)``, or ``(False, reason)`` inside a blackout period."""
    now = now or utcnow()
    blackout = blackout_on(now, ctx.settings.blackouts)
    if blackout is None:
        return True, None
    return False, f"blackout '{blackout.name}' ({blackout.start}..{blackout.end})"


def drill_due(ctx: RunContext, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    blackout = blackout_on(now, ctx.settings.blackouts)
    overdue = overdue_systems(ctx.config.systems, last_success(ctx.state), now, ctx.settings.max_age)
    return {
        "as_of": now.isoformat(),
        "blackout": blackout.name if blackout else None,
        "next_window": next_drill_window(now, ctx.settings.blackouts).isoformat(),
        "max_age_seconds": ctx.settings.max_age,
        "overdue": [
            {
                "system": o.system,
                "last_success": o.last_success.isoformat() if o.last_success else None,
                "age_seconds": o.age,
            }
            for o in overdue
        ],
    }
