"""What ``bcpctl control ship|status`` ask of the control plane, seen from the site bcpctl runs at.

Both start from the active site as this site's own control database records it
(:mod:`failover.activesite`): normally the primary, whose copies go to every offsite site;
after a failover the offsite, whose copies go to its second copy. A control database that does
not exist here yet is not created by asking (a SQLite file is opened only if it is there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from dc.config import Consortium, local_site
from dc.errors import N_, BcpError, Message, UsageError, message_of
from failover.activesite import ActiveSite, active_site, resolve_active
from failover.controlchoice import control_plane
from failover.controlplane import (
    ControlCopy,
    Cycle,
    ShipResult,
    copy_age,
    display_url,
    state_url,
    within_rpo,
)
from failover.settings import drill_settings


def local_active(config: Consortium) -> ActiveSite:
    """The active site as the control database of the site bcpctl runs at records it."""
    from sqlalchemy.engine import make_url

    from dc.state import open_state

    url = state_url(config, local_site(config))
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not (parsed.database and Path(parsed.database).is_file()):
        return resolve_active(config, None, drill_settings(config).failover.second_copy)
    engine = open_state(url)
    try:
        return active_site(config, engine)
    finally:
        engine.dispose()


def ship_control_state(
    config: Consortium, config_dir: Path | None, *, now: datetime, sites: list[str] | None = None
) -> ShipResult:
    """``bcpctl control ship``: one replication cycle from the active site, the control state included."""
    active = local_active(config)
    for site in sites or ():
        if site not in active.second_copy:
            raise UsageError(
                N_("'{site}' does not hold the second copy of the active site '{site2}' (it goes to: {second_copy})"),
                site=site,
                site2=active.site,
                second_copy=", ".join(active.second_copy) or Message(N_("nowhere")),
            )
    return control_plane(config, config_dir).replicate(Cycle(now, sites or None, active))


@dataclass(frozen=True)
class SiteCopy:
    site: str
    newest: ControlCopy | None
    age_seconds: float | None
    within_rpo: bool
    problem: str | None = None


@dataclass
class ControlStatus:
    """``bcpctl control status``: the control-plane RPO and how old each second site's copy is."""

    kind: str
    rpo_seconds: int
    #: the site this bcpctl runs at, and its control database (password hidden)
    site: str
    database: str
    #: the site whose control state is live, and since when (``None``: it never handed over)
    active_site: str = ""
    sites: list[SiteCopy] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.within_rpo for s in self.sites)


def control_status(config: Consortium, config_dir: Path | None, *, now: datetime) -> ControlStatus:
    """The newest copy of the active site's control state at each site of its second copy."""
    plane = control_plane(config, config_dir)
    here = local_site(config)
    active = local_active(config)
    rpo = config.control_plane_rpo
    status = ControlStatus(plane.kind, rpo, here, display_url(state_url(config, here)), active.site)
    for site in active.second_copy:
        try:
            newest = plane.newest_copy(site)
        except BcpError as exc:
            status.sites.append(SiteCopy(site, None, None, False, message_of(exc)))
            continue
        when = newest.time if newest else None
        status.sites.append(SiteCopy(site, newest, copy_age(when, now), within_rpo(when, now, rpo)))
    return status
