"""One PostgreSQL control database that every site names: used where it is, never shipped.

Nothing is shipped and nothing restored: promotion and handover open it where it is, so no
copy time is known and the control-plane RPO is not measured (the report says so). Its own
high availability is the database service's business, outside bcpctl.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from dc.config import Consortium
from dc.errors import N_, Message
from failover.controlplane import (
    ControlCopy,
    Cycle,
    Promotion,
    PromotionOrder,
    ShipResult,
    display_url,
    head_of,
    serving,
    ship_each,
    state_url,
)


class SharedDatabase:
    """:class:`~failover.controlplane.ControlPlane` for one database both sites reach where it is."""

    kind = "shared"

    def __init__(self, config: Consortium, config_dir: Path | None) -> None:
        self.config = config
        self.config_dir = config_dir

    def replicate(self, cycle: Cycle) -> ShipResult:
        source, targets = serving(self.config, cycle.active)
        shipped = ShipResult(
            self.kind, source, notes=[Message(N_("the control database is not shipped: both sites reach it"))]
        )
        for _site, _run in ship_each(self.config, self.config_dir, cycle, shipped, targets):
            pass
        return shipped

    def newest_copy(self, site: str) -> ControlCopy | None:
        return None

    def lag(self, site: str, now: datetime) -> float | None:
        return None

    def promote(self, site: str, order: PromotionOrder, from_site: str | None = None) -> Promotion:
        url = state_url(self.config, site)
        name = display_url(url)
        promotion = Promotion(site, from_site or self.config.primary_site, name, "kept", order.declared_at, url=url)
        promotion.received_seq, promotion.received_hash, promotion.received_at = head_of(url)
        promotion.warnings.append(
            Message(
                N_(
                    "control state at {site}: {name} is used where it is; nothing was shipped, the "
                    "control-plane RPO is not measured"
                ),
                site=site,
                name=name,
            )
        )
        return promotion

    def prepare_handover(self, from_site: str, to_site: str, *, token: str) -> list[str]:
        return []

    def hand_over(self, to_site: str, order: PromotionOrder, *, from_site: str) -> Promotion:
        promotion = self.promote(to_site, order, from_site)
        promotion.planned = True
        return promotion

    def follow(self, site: str, *, of: str, token: str) -> list[str]:
        return []
