"""What the live PostgreSQL control database says of its standbys, read at scrape time.

The copy age (:mod:`monitoring.controlplane`) moves once a replication cycle, when the
heartbeat is recorded; the live database's ``pg_stat_replication`` says at once whether each
standby streams and how far its replay is behind. ``replay_lag`` is the time between the
primary flushing WAL and the standby reporting it replayed; PostgreSQL shows NULL once a
standby has caught up and stays idle ("The Statistics Collector", pg_stat_replication), so a
replay position at the primary's own counts as no lag. A lag that cannot be told (no report
yet, a standby behind without one) is left out rather than guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, text

from failover.control_server import slot_name


@dataclass(frozen=True)
class StandbyLink:
    """The stream from the live control database to one site's standby."""

    site: str
    #: the standby's slot is in use and its WAL sender is ``streaming``
    streaming: bool
    #: seconds its replay is behind the live database now (0: caught up; ``None``: not known)
    lag_seconds: float | None = None


def standby_links(engine: Engine, sites: tuple[str, ...]) -> dict[str, StandbyLink]:
    """Each site's :class:`StandbyLink`, read from the database behind ``engine`` alone (a site
    without a slot there, or with nobody on it, does not stream)."""
    names = {slot_name(site): site for site in sites}
    found = {site: StandbyLink(site, False) for site in sites}
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT s.slot_name, r.state, EXTRACT(EPOCH FROM r.replay_lag)::float8, "
                "CASE WHEN pg_is_in_recovery() THEN NULL ELSE r.replay_lsn >= pg_current_wal_lsn() END "
                "FROM pg_replication_slots s LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid "
                "WHERE s.slot_name = ANY(:names)"
            ),
            {"names": list(names)},
        )
        for slot, state, lag, caught_up in rows:
            streaming = state == "streaming"
            if not streaming:
                lag = None
            elif lag is None and caught_up:
                lag = 0.0
            found[names[slot]] = StandbyLink(names[slot], streaming, None if lag is None else round(float(lag), 3))
    return found
