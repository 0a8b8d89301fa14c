"""Is each system protected: does a second site hold a copy of it within its RPO?

That copy is what a disaster at the active site would leave, so its age is the data such a
disaster would cost right now. The replication ledger records, per target and system, the
newest snapshot there (``replication_lag``); this module reads those rows for the sites that
should hold the second copy now (:mod:`failover.activesite`) and judges each system.

In normal operation the copies are the primary's replicas at the offsite sites. While failed
over, only a copy replicated *from the active site*, measured since it took over, counts:
what a third site still holds of the old primary, or what the rebuilt primary held before
the disaster, is a copy of data that no longer runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import Engine, select

from dc.config import Consortium
from dc.duration import format_duration
from dc.state import naming_damaged_rows
from failover.activesite import ActiveSite
from replication import ledger
from storage.url import repository_url_key

#: protected; stale (older than the RPO); missing (no copy at all); untargeted (no RPO to judge by)
State = Literal["protected", "stale", "missing", "untargeted"]


@dataclass(frozen=True)
class Copy:
    """The newest snapshot of one system at one site, as replication last measured it."""

    site: str
    newest: datetime | None
    measured_at: datetime | None


@dataclass(frozen=True)
class Protection:
    system: str
    #: where the second copy goes now
    sites: tuple[str, ...]
    #: the one of them holding the newest copy
    site: str | None
    newest: datetime | None
    age_seconds: float | None
    state: State
    #: Japanese first, then English: the reason people read
    reason: str

    @property
    def protected(self) -> bool:
        return self.state == "protected"


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _age(seconds: float) -> str:
    return format_duration(max(0.0, seconds))


def read_copies(state: Engine, config: Consortium, active: ActiveSite) -> dict[str, list[Copy]]:
    """Per system, the copies the replication ledger knows at the sites of ``active.second_copy``."""
    targets = {repository_url_key(config.sites[site].repository): site for site in active.second_copy}
    source = repository_url_key(config.sites[active.site].repository)
    found: dict[str, list[Copy]] = {}
    with state.connect() as conn, naming_damaged_rows(state, ledger.lag):
        rows = conn.execute(select(ledger.lag).where(ledger.lag.c.target.in_(list(targets)))).all()
    for row in rows:
        measured = _aware(row.measured_at)
        if active.failed_over and (
            row.source != source or (active.since is not None and (measured is None or measured < active.since))
        ):
            continue
        found.setdefault(row.system, []).append(Copy(targets[row.target], _aware(row.target_newest), measured))
    return found


def judge_protection(system: str, rpo: int | None, copies: list[Copy], active: ActiveSite, now: datetime) -> Protection:
    """Whether ``system`` is protected by the newest of ``copies`` (a pure function of its inputs)."""
    sites = active.second_copy
    dated = [(c.newest, c) for c in copies if c.newest is not None]
    best = max(dated, key=lambda d: d[0], default=(None, None))[1]
    where = ", ".join(sites) or "—"
    if best is None or best.newest is None:
        if not sites:
            reason = "第二のコピーの行き先が未設定 / unprotected: no site is configured to hold a second copy"
        elif active.failed_over:
            reason = (
                f"保護なし: {active.site} から {where} への複製がまだない / unprotected: no copy replicated "
                f"from {active.site} to {where} since it took over"
            )
        else:
            reason = "遠隔地にスナップショットなし / no offsite snapshot recorded"
        return Protection(system, sites, None, None, None, "missing", reason)
    age = max(0.0, (now - best.newest).total_seconds())
    at = f" ({best.site})" if active.failed_over else ""
    if rpo is None:
        state: State = "untargeted"
        reason = f"RPO 目標未設定 (最新 {_age(age)} 前{at}) / no RPO target (newest {_age(age)} old{at})"
    elif age > rpo:
        state = "stale"
        if active.failed_over:
            reason = (
                f"保護なし: {best.site} の最新 {_age(age)} 前 > RPO {_age(rpo)} / unprotected: newest copy at "
                f"{best.site} {_age(age)} old, over RPO {_age(rpo)}"
            )
        else:
            reason = f"最新 {_age(age)} 前 > RPO {_age(rpo)} / newest offsite {_age(age)} old, over RPO {_age(rpo)}"
    else:
        state = "protected"
        if active.failed_over:
            reason = (
                f"{best.site} に {_age(age)} 前の複製 ≤ RPO {_age(rpo)} / second copy at {best.site} {_age(age)} old"
            )
        else:
            reason = f"最新 {_age(age)} 前 ≤ RPO {_age(rpo)} / newest offsite {_age(age)} old"
    return Protection(system, sites, best.site, best.newest, round(age, 1), state, reason)


def protection(state: Engine, config: Consortium, active: ActiveSite, now: datetime) -> dict[str, Protection]:
    """Every configured system's protection while ``active`` serves."""
    copies = read_copies(state, config, active)
    return {
        system_id: judge_protection(system_id, system.rpo, copies.get(system_id, []), active, now)
        for system_id, system in config.systems.items()
    }
