"""The control plane on PostgreSQL: a physical streaming standby of the live control database.

The site whose state is live (the primary; after a failover the offsite) streams its WAL to a
standby at the site of its second copy (:mod:`failover.control_server`): no copy is taken or
shipped, the standby is never more than the replication lag behind.

Recovery point: a standby knows when the newest transaction it replayed committed at its
primary (``pg_last_xact_replay_timestamp()``). So that this stays fresh while nothing else is
written, every replication cycle writes a heartbeat through it — the ``_control`` row of the
replication ledger, with the time it was written — and waits briefly for the standby to replay
it; that row is the newest copy's time the metrics read (``bcp_control_plane_copy_age_seconds``)
and still tells it after the old primary is gone and the standby restarted.

Failover (:meth:`PostgresStandby.promote`): refused while the old primary's control database
answers and accepts writes (it is not fenced: two live control states would split). Otherwise
the standby's recovery point is measured, ``pg_promote()`` makes it the live database and it
forgets its old primary. Failback (:meth:`prepare_handover`, :meth:`hand_over`, :meth:`follow`):
the old primary is rebuilt as a standby of the active site (``pg_rewind``, else
``pg_basebackup``), then the active site's database is fenced read-only, the standby replays
up to its last WAL position and is promoted — nothing written is lost — and the old active
site is rebuilt as the new primary's standby.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from dc.clock import jst_text, utcnow
from dc.config import Consortium
from dc.errors import N_, BcpError, Message, joined, message_of
from failover.control_server import ControlServer, ServerState, lsn, slot_name
from failover.control_standby import STANDBY_KIND, StandbyReport, init_standby, live_site, standby_timeout
from failover.controlplane import (
    CONTROL_SYSTEM,
    ControlCopy,
    ControlPlaneError,
    Cycle,
    Promotion,
    PromotionOrder,
    ShipResult,
    copy_age,
    head_of,
    measured_rpo,
    serving,
    ship_each,
    state_url,
    upgrade_promoted,
)
from replication.ledger import Ledger
from replication.records import SystemLag
from storage.url import repository_url_key

#: how long a replication cycle waits for the standby to replay its heartbeat
HEARTBEAT_WAIT = 5.0


class PostgresStandby:
    """:class:`~failover.controlplane.ControlPlane` for PostgreSQL control databases (module docstring)."""

    kind = STANDBY_KIND

    def __init__(self, config: Consortium, config_dir: Path | None) -> None:
        self.config = config
        self.config_dir = config_dir

    def server(self, site: str) -> ControlServer:
        return ControlServer(self.config, site)

    def _key(self, site: str) -> str:
        return repository_url_key(self.config.sites[site].repository)

    def _timeout(self, site: str) -> int:
        return standby_timeout(self.config, site)

    def live_site(self, *, besides: str) -> str:
        return live_site(self.config, besides=besides)

    def init_standby(
        self, site: str, *, source: str | None = None, replace: bool = False, token: str | None = None
    ) -> StandbyReport:
        return init_standby(self.config, site, source=source, replace=replace, token=token)

    # -- replication ----------------------------------------------------------------------------

    def replicate(self, cycle: Cycle) -> ShipResult:
        """The systems' replication of the cycle, and a heartbeat through each standby."""
        source, targets = serving(self.config, cycle.active)
        shipped = ShipResult(self.kind, source)
        for site, _run in ship_each(self.config, self.config_dir, cycle, shipped, targets):
            try:
                shipped.newest[site] = self.heartbeat(source, site, ledger=cycle.ledger)
            except BcpError as exc:
                shipped.newest[site] = None
                shipped.problems.append(
                    Message(N_("{site}: control state: {reason}"), site=site, reason=message_of(exc))
                )
        return shipped

    def heartbeat(self, source: str, site: str, *, ledger: Ledger | None = None) -> ControlCopy | None:
        """Write a heartbeat at ``source``, wait briefly for ``site``'s standby to replay it, and record
        the standby's recovery point in the ledger: the newest copy at ``site``. Raises when the
        standby does not answer, is no standby, or does not stream."""
        from dc.state import open_state

        owned = ledger is None
        ledger = ledger or Ledger(open_state(state_url(self.config, source)))
        try:
            origin, standby = self.server(source), self.server(site)
            previous = next((x.target_newest for x in ledger.lag(self._key(site)) if x.system == CONTROL_SYSTEM), None)
            beat = utcnow()
            ledger.record_lag(
                self._key(source), self._key(site), [SystemLag(CONTROL_SYSTEM, beat, previous, None)], beat
            )
            mark = lsn(origin.state().position)
            found = standby.wait_for(
                lambda s: not s.answers or not s.in_recovery or (lsn(s.position) or 0) >= (mark or 0), HEARTBEAT_WAIT
            )
            self._require_standby(found, source)
            replayed = mark is not None and (lsn(found.position) or 0) >= mark
            when = beat if replayed else self._recovery_point(standby, found)
            now = utcnow()
            ledger.record_lag(
                self._key(source), self._key(site), [SystemLag(CONTROL_SYSTEM, beat, when, copy_age(when, now))], now
            )
        finally:
            if owned:
                ledger.engine.dispose()
        if not found.streaming:
            raise not_streaming(site, source, found.receiver, when)
        return ControlCopy(site, when, position=found.position) if when else None

    def _require_standby(self, found: ServerState, source: str) -> None:
        if not found.answers:
            raise ControlPlaneError(
                found.problem or Message(N_("the control database of {site} does not answer"), site=found.site)
            )
        if not found.in_recovery:
            raise ControlPlaneError(
                N_(
                    "the control database of {site} is not a standby (it accepts writes of its own): 'bcpctl "
                    "control standby init --site {site}' makes it one of {source}"
                ),
                site=found.site,
                source=source,
            )

    def _recovery_point(self, standby: ControlServer, found: ServerState) -> datetime | None:
        """What the standby holds of its primary, by the primary's clock: the newest of the last
        transaction it replayed and the last heartbeat it holds."""
        beat = standby.heartbeat(CONTROL_SYSTEM, self._key(standby.site))
        times = [t for t in (found.replayed_at, beat) if t is not None]
        return max(times) if times else None

    def newest_copy(self, site: str) -> ControlCopy | None:
        """Read at the standby; when the live site answers and the standby has replayed all it had
        a moment before, the copy is as of that moment."""
        checked = utcnow()
        try:
            source: str | None = self.live_site(besides=site)
        except ControlPlaneError:
            source = None  # the live site is gone: what the standby replayed is all there is
        origin = self.server(source).state() if source else None
        standby = self.server(site)
        found = standby.state()
        self._require_standby(found, source or "the live site")
        when = self._recovery_point(standby, found)
        if origin is not None and origin.answers and (lsn(found.position) or 0) >= (lsn(origin.position) or 0):
            when = checked
        return ControlCopy(site, when, position=found.position) if when else None

    def lag(self, site: str, now: datetime) -> float | None:
        copy = self.newest_copy(site)
        return copy_age(copy.time if copy else None, now)

    # -- failover -------------------------------------------------------------------------------

    def promote(self, site: str, order: PromotionOrder, from_site: str | None = None) -> Promotion:
        from_site = from_site or self.config.primary_site
        old = self.server(from_site)
        was = old.state()
        if was.answers and not was.in_recovery and not was.read_only:
            raise ControlPlaneError(
                N_(
                    "the control database of {from_site} ({display}) still answers and accepts writes: it is "
                    "not fenced. Stop it (sites.{from_site}.control_server.stop) or fence {from_site}, then "
                    "run the failover again; the standby at {site} was not promoted"
                ),
                from_site=from_site,
                display=old.display,
                site=site,
            )
        standby = self.server(site)
        found = standby.state()
        if not found.answers and standby.spec is not None:
            standby.command("start")
            found = standby.wait_for(lambda s: s.answers, self._timeout(site))
        if not found.answers:
            raise ControlPlaneError(
                found.problem or Message(N_("the control database of {site} does not answer"), site=site)
            )
        url = state_url(self.config, site)
        promotion = Promotion(site, from_site, standby.display, "streamed", order.declared_at, url=url)
        if found.in_recovery:
            when = self._recovery_point(standby, found)
            promotion.copy = ControlCopy(site, when, position=found.position) if when else None
            promotion.rpo_seconds = measured_rpo(when, order.declared_at)
            if when is None:
                promotion.warnings.append(
                    Message(N_("the standby at {site} replayed no transaction: the RPO is not measured"), site=site)
                )
            self._promote(standby)
        else:
            self._kept(promotion)
        promotion.schema_before, promotion.schema_after = upgrade_promoted(url)
        if promotion.source == "streamed":
            promotion.received_seq, promotion.received_hash, promotion.received_at = head_of(url)
        return promotion

    def _promote(self, standby: ControlServer) -> None:
        if not standby.promote(self._timeout(standby.site)):
            raise ControlPlaneError(
                N_(
                    "pg_promote() at {site} did not finish within {detail} s: see its server log; run the "
                    "command again once it accepts writes"
                ),
                site=standby.site,
                detail=self._timeout(standby.site),
            )
        standby.stop_following()

    def _kept(self, promotion: Promotion) -> None:
        """The site's database already is a primary: this failover's earlier attempt promoted it, or
        someone did by hand (then nothing is known about what it received)."""
        from dc.audit import read_entries
        from dc.continuation import PROMOTED
        from dc.state import open_state

        promotion.source = "kept"
        engine = open_state(promotion.url)
        try:
            earlier = [
                e.parsed_details()
                for e in read_entries(engine)
                if e.action == PROMOTED and e.parsed_details().get("site") == promotion.site
            ]
        finally:
            engine.dispose()
        if earlier and earlier[-1].get("source") == "streamed":
            last = earlier[-1]
            promotion.received_seq = int(last.get("received_seq") or 0)
            promotion.received_hash = str(last.get("received_hash") or "")
            promotion.received_at = last.get("received_at")
            if last.get("copy_time"):
                when = datetime.fromisoformat(str(last["copy_time"]))
                promotion.copy = ControlCopy(promotion.site, when, position=last.get("position"))
                promotion.rpo_seconds = measured_rpo(when, promotion.declared_at)
            return
        promotion.warnings.append(
            Message(
                N_(
                    "the control database of {site} is not a standby and no promotion of it is "
                    "recorded: it is used as it is; the control-plane RPO is not measured"
                ),
                site=promotion.site,
            )
        )

    # -- failback -------------------------------------------------------------------------------

    def prepare_handover(self, from_site: str, to_site: str, *, token: str) -> list[str]:
        """``to_site``'s control server becomes a streaming standby of ``from_site`` (if it is not one)."""
        found, origin = self.server(to_site).state(), self.server(from_site).state()
        if found.in_recovery and found.streaming and found.system_id == origin.system_id:
            return [f"control server of {to_site}: already streams from {from_site}"]
        report = self.init_standby(to_site, source=from_site, token=token)
        if not report.ok:
            raise ControlPlaneError(
                N_("{report}: {problems}"),
                report=report.summary(),
                problems=joined(report.problems) or Message(N_("see its server log")),
            )
        return [report.summary()]

    def hand_over(self, to_site: str, order: PromotionOrder, *, from_site: str) -> Promotion:
        """Fence ``from_site``'s database, let ``to_site`` replay all of it, promote ``to_site``."""
        source, target = self.server(from_site), self.server(to_site)
        self._require_standby(target.state(), from_site)
        timeout = self._timeout(to_site)
        source.fence()
        try:
            mark = source.state().position
            at = utcnow()
            caught = target.wait_for(lambda s: (lsn(s.position) or 0) >= (lsn(mark) or 0), timeout)
            if (lsn(caught.position) or 0) < (lsn(mark) or 0):
                raise ControlPlaneError(
                    N_(
                        "the standby at {to_site} replayed up to {position}, not {from_site}'s last WAL position "
                        "{mark}, within {timeout} s: {from_site} stays live"
                    ),
                    to_site=to_site,
                    position=caught.position,
                    from_site=from_site,
                    mark=mark,
                    timeout=timeout,
                )
        except BaseException:
            source.unfence()
            raise
        self._promote(target)
        url = state_url(self.config, to_site)
        promotion = Promotion(to_site, from_site, target.display, "streamed", order.declared_at, url=url, planned=True)
        promotion.copy = ControlCopy(to_site, at, position=mark)
        promotion.rpo_seconds = measured_rpo(at, order.declared_at)
        promotion.schema_before, promotion.schema_after = upgrade_promoted(url)
        promotion.received_seq, promotion.received_hash, promotion.received_at = head_of(url)
        return promotion

    def follow(self, site: str, *, of: str, token: str) -> list[str]:
        """``site``'s server, fenced by the handover, is rebuilt as a standby of ``of``."""
        try:
            self.server(site).drop_slot(slot_name(of))  # a slot on a standby would keep its WAL forever
            report = self.init_standby(site, source=of, token=token)
        except BcpError as exc:
            return [
                Message(
                    N_(
                        "the control server of {site} is not a standby of {of} yet ({reason}): run "
                        "'bcpctl control standby init --site {site}' at {site}"
                    ),
                    site=site,
                    of=of,
                    reason=message_of(exc),
                )
            ]
        if report.ok:
            return []
        return [Message(N_("{summary}: {problems}"), summary=report.summary(), problems=joined(report.problems))]


def not_streaming(site: str, source: str, receiver: str | None, when: datetime | None) -> ControlPlaneError:
    """The refusal of a standby that does not stream; its copy's time is read by a person (JST)."""
    return ControlPlaneError(
        N_("the standby at {site} does not stream from {source} (WAL receiver: {receiver}); its copy is as of {when}"),
        site=site,
        source=source,
        receiver=receiver or Message(N_("not running")),
        when=jst_text(when, seconds=True) if when else Message(N_("unknown")),
    )
