"""Setting up a PostgreSQL control server as a streaming standby of the live control database.

Kept apart from :mod:`failover.control_postgres` (which runs the standby through replication,
failover and failback) because building one is an operator's step of its own (``bcpctl control
standby init``) with its own refusals: never discard what a server might hold that the live
one does not.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from dc.config import Consortium
from dc.errors import N_, Message, UsageError, joined
from failover.control_server import ControlServer, ServerState, slot_name
from failover.controlplane import ControlPlaneError, plane_kind

#: the control plane kind these standbys serve (``PostgresStandby.kind``)
STANDBY_KIND = "postgres-standby"


def standby_timeout(config: Consortium, site: str) -> int:
    """Seconds to wait for ``site``'s control server to answer, stream or replay."""
    spec = config.sites[site].control_server
    return spec.timeout if spec else 300


def live_site(config: Consortium, *, besides: str) -> str:
    """The site whose control database answers as a primary, the configured primary first."""
    for site in [config.primary_site, *config.offsite_sites]:
        if site != besides and (found := ControlServer(config, site).state()).answers and not found.in_recovery:
            return site
    raise ControlPlaneError(
        N_("no other site's control database answers as a primary (not in recovery) to stream {besides} from"),
        besides=besides,
    )


@dataclass
class StandbyReport:
    """``bcpctl control standby init``: the standby at ``site`` and how it came to be."""

    site: str
    source: str
    slot: str
    slot_created: bool = False
    #: ``pg_basebackup``, ``pg_rewind`` or ``reconfigured`` (it already was a standby of ``source``)
    method: str = ""
    #: the data directory that was there, moved aside (never deleted)
    kept_aside: str | None = None
    #: why ``pg_rewind`` could not be used, when ``pg_basebackup`` was
    rewind_skipped: str | None = None
    streaming: bool = False
    position: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.streaming and not self.problems

    def summary(self) -> str:
        """One line for people, a :class:`~dc.errors.Message` (English as ever, shown in the operator's language)."""
        if self.method == "reconfigured":
            how = Message(N_("already a standby, reconfigured"))
        else:
            how = Message(N_("built with {method}"), method=self.method)
        if self.rewind_skipped and self.method == "pg_basebackup":
            how = Message(N_("{how}, not pg_rewind: {why}"), how=how, why=self.rewind_skipped)
        if self.kept_aside:
            how = Message(N_("{how}; the previous data directory is kept as {path}"), how=how, path=self.kept_aside)
        state = Message(N_("streaming")) if self.streaming else Message(N_("NOT streaming"))
        return Message(
            N_("control server of {site}: standby of {source} ({how}, slot {slot}), {state}"),
            site=self.site,
            source=self.source,
            how=how,
            slot=self.slot,
            state=state,
        )


def init_standby(
    config: Consortium, site: str, *, source: str | None = None, replace: bool = False, token: str | None = None
) -> StandbyReport:
    """Make ``site``'s control server a streaming standby of ``source`` (default: the live one)."""
    token = token or secrets.token_hex(4)
    source = source or live_site(config, besides=site)
    if source == site:
        raise UsageError(N_("'{site}' cannot be a standby of itself"), site=site)
    origin = ControlServer(config, source)
    live = origin.state()
    if not live.answers:
        raise ControlPlaneError(
            live.problem or Message(N_("the control database of {site} does not answer"), site=source)
        )
    if live.in_recovery:
        raise ControlPlaneError(
            N_("the control database of {source} is a standby itself: stream from the live one"), source=source
        )
    if problems := origin.settings_problems():
        raise ControlPlaneError(
            N_(
                "the control server of {source} needs {problems} (postgresql.conf, then a restart); nothing was changed"
            ),
            source=source,
            problems=joined(problems),
        )
    slot = slot_name(site)
    report = StandbyReport(site, source, slot, origin.ensure_slot(slot))
    standby = ControlServer(config, site)
    found = standby.state()
    if found.answers and found.in_recovery and found.system_id == live.system_id and not replace:
        report.method = "reconfigured"
    else:
        _refuse_unsafe(standby, found, live, replace)
        if found.answers:
            standby.command("stop")
        report.method, report.kept_aside, report.rewind_skipped = standby.rebuild(origin, slot, token)
        standby.command("start")
    standby.wait_for(lambda s: s.answers, standby_timeout(config, site))
    standby.follow(origin, slot)
    final = standby.wait_for(lambda s: s.streaming, standby_timeout(config, site))
    report.streaming, report.position = final.streaming, final.position
    if not final.answers:
        report.problems.append(final.problem or Message(N_("it does not answer")))
    elif not final.streaming:
        report.problems.append(receiver_problem(final.receiver))
    return report


def receiver_problem(receiver: str | None) -> Message:
    """A standby that answers but does not stream: its WAL receiver's state (PostgreSQL's word, or none)."""
    return Message(N_("WAL receiver: {state}"), state=receiver or Message(N_("not running")))


def _refuse_unsafe(standby: ControlServer, found: ServerState, live: ServerState, replace: bool) -> None:
    """Never discard what a server might hold that the live one does not."""
    site = standby.site
    if found.answers and not found.in_recovery and not found.read_only:
        raise ControlPlaneError(
            N_(
                "the control database of {site} accepts writes: rebuilding it would discard what it wrote; "
                "stop it (sites.{site}.control_server.stop) first, nothing was changed"
            ),
            site=site,
        )
    on_disk = found.system_id if found.answers else standby.cluster_on_disk()
    if on_disk is not None and on_disk != live.system_id and not replace:
        raise ControlPlaneError(
            N_(
                "the data directory of {site}'s control server holds another cluster ({on_disk}, not "
                "{system_id}): --replace moves it aside and copies the live one; nothing was changed"
            ),
            site=site,
            on_disk=on_disk,
            system_id=live.system_id,
        )


def setup_standby(config: Consortium, *, site: str | None, source: str | None, replace: bool) -> StandbyReport:
    """``bcpctl control standby init``: ``site`` (default: the first offsite site) streams from ``source``."""
    kind = plane_kind(config)
    if kind != STANDBY_KIND:
        why = (
            Message(N_("ships copies with every replication cycle"))
            if kind == "sqlite-shipping"
            else Message(N_("is one database"))
        )
        raise UsageError(
            N_(
                "a standby is for PostgreSQL control databases of their own at each site "
                "(sites.<name>.control_db: postgresql://…); this configuration's control state {why}"
            ),
            why=why,
        )
    for name in (site, source):
        if name is not None and name not in config.sites:
            raise UsageError(N_("unknown site '{name}' (known: {sites})"), name=name, sites=", ".join(config.sites))
    if site is None:
        if not config.offsite_sites:
            raise UsageError(N_("the configuration has no site with role: offsite to keep a standby at"))
        site = config.offsite_sites[0]
    return init_standby(config, site, source=source, replace=replace)
