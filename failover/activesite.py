"""Which site serves production now, since when, and where the copy that protects it goes.

Derived from the run records, never stored beside them: the newest passed failover or
failback (:func:`failover.records.last_handover`) decided it, and a second flag written
from those records could only disagree with them. It survives restarts with the control
database, and a control database promoted at the offsite site says what its own records say.

While production runs at an offsite site, each system's data lives where the failover
restored it (``System.restore_dsn`` / ``restore_dir``), so that is what gets backed up; and
the copy that protects it goes to ``drills.failover.second_copy`` — by default the primary,
once it is rebuilt. In normal operation the primary serves and its copies go to every
offsite site.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from dc.clock import jst_text
from dc.config import Consortium
from dc.errors import N_, ConfigError
from failover.records import RunRecord, last_handover
from failover.settings import drill_settings
from failover.targets import production_source


@dataclass(frozen=True)
class ActiveSite:
    #: the site serving production now
    site: str
    #: the configured primary
    primary: str
    #: when it began serving; ``None`` for a primary that never handed over
    since: datetime | None
    #: the failover or failback run that made it the active site
    run_id: str | None
    #: the sites that should hold the copy protecting it, now
    second_copy: tuple[str, ...]

    @property
    def failed_over(self) -> bool:
        return self.site != self.primary


def second_copy_sites(config: Consortium, active: str, chosen: str | None) -> tuple[str, ...]:
    """Where the second copy goes while ``active`` serves (``chosen``: ``drills.failover.second_copy``)."""
    if active == config.primary_site:
        return tuple(config.offsite_sites)
    if chosen is not None and chosen != active:
        return (chosen,)
    return (config.primary_site,)


def resolve_active(config: Consortium, last: RunRecord | None, chosen: str | None) -> ActiveSite:
    """The active site after ``last`` (the newest passed failover or failback, if any)."""
    primary = config.primary_site
    site = primary
    if last is not None and last.kind == "failover":
        site = last.target_site or ""
        if site not in config.sites:
            raise ConfigError(
                N_(
                    "failover run {id} moved production to site '{site}', which the configuration does not "
                    "name (known: {sites})"
                ),
                id=last.id,
                site=site,
                sites=", ".join(config.sites),
            )
    since = last.finished_at if last is not None else None
    return ActiveSite(site, primary, since, last.id if last else None, second_copy_sites(config, site, chosen))


def active_site(config: Consortium, state: Engine) -> ActiveSite:
    """The active site as the control database's run records say."""
    return resolve_active(config, last_handover(state), drill_settings(config).failover.second_copy)


def stranded_systems(config: Consortium, active: ActiveSite) -> list[str]:
    """Systems whose production data bcpctl cannot locate at the active site (a command source)."""
    if not active.failed_over:
        return []
    return [system_id for system_id in config.systems if production_source(config, system_id, None) is None]


def serving_config(config: Consortium, active: ActiveSite, config_dir: Path | None) -> Consortium:
    """The configuration as it holds while ``active`` serves: each system's source is where its
    production data lives now, so backups and source probes read what runs there."""
    if not active.failed_over:
        return config
    systems = {}
    for system_id, system in config.systems.items():
        source = production_source(config, system_id, config_dir)
        systems[system_id] = system if source is None else system.model_copy(update={"source": source})
    return config.model_copy(update={"systems": systems})


def drill_notice(active: ActiveSite, site: str) -> str | None:
    """What a drill run while failed over says about where it went, and why there."""
    if not active.failed_over:
        return None
    since = f" since {jst_text(active.since)}" if active.since else ""
    serving = f"本番は {active.site} で稼働中 / production runs at {active.site}{since} (run {active.run_id})"
    if site == active.site:
        return (
            f"{serving}: drilled from {site}'s repository into its sandboxes (drill_dsn, drill_dir), "
            "never into the failover targets that production now occupies"
        )
    return f"{serving}: drilled at {site}, as asked, from {site}'s repository"
