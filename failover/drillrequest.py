"""What a drill is asked to do: the one request every drill mode takes.

Its own module because the modes that live apart from :mod:`failover.drill` (readiness,
switchover) take it too, while :func:`failover.drill.run_drill` dispatches to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class DrillRequest:
    mode: str = "isolated"
    tenant: str | None = None
    systems: tuple[str, ...] = ()
    #: point-in-time: restore the newest snapshot taken strictly before this instant
    before: datetime | None = None
    site: str | None = None
    #: staff-loss: files holding SLIP-39 shares (K of them open the repository)
    escrow: tuple[str, ...] = ()
    timeout: float | None = None
    workers: int | None = None
    #: switchover only: the operator confirmed, and the second approver's name and own secret
    confirmed: bool = False
    approver: str | None = None
    approver_secret: str | None = None
    #: the id the run was recorded under before it began (:func:`failover.records.announce_run`)
    run_id: str | None = None
    #: who asked for the drill, when not the system user running bcpctl (a web account)
    operator: str | None = None
