"""The control plane survives the disaster it manages: the control state at every site.

The control state — drill history, export requests and their approvals, partners and portal
tokens, job history, the hash-chained audit log — is what bcpctl needs to carry on at the
offsite once the primary is gone (DESIGN "The control plane is part of what must survive").
Every site has its own control database: ``sites.<name>.control_db``, by default the top-level
``control_db`` (the same location on that site's own machines; on one machine, give each
site its own). ``$BCPCTL_SITE`` tells a bcpctl which site it runs at (default: the primary).

The offsite's copy must never be older than ``control_plane.rpo`` (default: the shortest
system RPO). How it is kept fresh depends on what the control database runs on, so failover,
the scheduler, the metrics and the CLI know only :class:`ControlPlane`:

``replicate(now)``
    bring every offsite site's copy up to date. Embedded SQLite: a consistent online copy of
    the primary's database, taken into the primary's repository as a snapshot of the reserved
    system :data:`CONTROL_SYSTEM` — so it is encrypted, deduplicated and verifiable without a
    key like every backup, and never shipped in the clear — then shipped by the normal keyless
    replication. PostgreSQL: a physical streaming standby replicates continuously; this
    checks it.
``newest_copy(site)``
    the newest copy at ``site``, read without a key (its time is the control-plane recovery point).
``lag(site, now)``
    how old that copy is: what a disaster now would cost the control state.
``promote(site, ...)``
    make ``site``'s copy the live control state. A failover does this first at the offsite,
    right after the primary is fenced and before anything is restored, and goes on with the
    promoted state. SQLite: the newest copy that verifies (SHA-256 of the restored file as
    recorded, ``PRAGMA integrity_check``, row counts) is put at the site's ``control_db`` and
    upgraded to this bcpctl's schema; a damaged newer copy is skipped with a warning naming
    the interval lost with it. PostgreSQL: ``pg_promote()`` on the standby.

:class:`~failover.control_sqlite.SqliteShipping` implements it for SQLite. A PostgreSQL
implementation (``PostgresStandby``: ``bcpctl control standby init`` sets up the standby with
``primary_conninfo`` and a replication slot; ``promote`` fences, then calls ``pg_promote()``;
failback rebuilds the old primary with ``pg_rewind``, else ``pg_basebackup``) slots in through
:func:`control_plane`; until it exists a PostgreSQL control database is a
:class:`SharedDatabase`, used where it is and never shipped.

After a promotion the site's first audit entry (:data:`dc.continuation.PROMOTED`, written by
:func:`record_promotion`) records the failover and the hash of the last entry received, so the
chain verifies across the failover and ``bcpctl audit verify`` states which entries stayed at
the old site (:mod:`dc.continuation`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from sqlalchemy import Engine

from backup.repository import Repository
from backup.retention import RetentionPolicy
from dc.audit import AuditEntry, append, audited, read_entries
from dc.config import Consortium
from dc.continuation import PROMOTED, Gap
from dc.errors import ProblemFound
from dc.state import default_state_url

#: the reserved system of control-state snapshots: configured system ids start with [a-z0-9]
CONTROL_SYSTEM = "_control"
#: copies are kept for the RPO window plus this much
KEEP_BEYOND_RPO = 86400
#: and never fewer than this many, so a damaged newest copy always has one to fall back to
KEEP_AT_LEAST = 2

Source = Literal["restored", "kept", "empty"]
RepositoryOpener = Callable[[], AbstractContextManager[Repository]]


class ControlPlaneError(ProblemFound):
    """The control state could not be shipped or promoted (exit 1); the message says what to do."""


@dataclass(frozen=True)
class ControlCopy:
    """One copy of the primary's control state at a site."""

    site: str
    #: when the copy was taken at the primary: the control-plane recovery point
    time: datetime
    #: the repository snapshot holding it (SQLite shipping)
    snapshot_id: str | None = None


@dataclass
class ShipResult:
    """What one ``replicate`` did: the copy taken, and each offsite site's newest copy afterwards."""

    kind: str
    copy: ControlCopy | None = None
    bytes_added: int = 0
    #: older copies the retention removed at the primary (replication removes them offsite later)
    forgotten: int = 0
    #: site -> newest copy there after shipping (``None``: none yet)
    newest: dict[str, ControlCopy | None] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: the replication runs of the cycle (replication.sync.SyncResult), one per site reached
    runs: list[Any] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class SkippedCopy:
    """A newer copy that did not verify, and why."""

    snapshot_id: str
    time: datetime | None
    problem: str


@dataclass
class Promotion:
    """The control state a site took over at a failover: where it came from and what it lacks."""

    site: str
    from_site: str
    #: the promoted database's URL, password hidden
    database: str
    source: Source
    declared_at: datetime
    copy: ControlCopy | None = None
    #: declared disaster minus the copy's time (``None``: no copy, not measured)
    rpo_seconds: float | None = None
    #: the last audit entry received with the copy
    received_seq: int = 0
    received_hash: str = ""
    received_at: str | None = None
    skipped: list[SkippedCopy] = field(default_factory=list)
    #: the database that was at the site's location before, moved aside (never deleted)
    kept_aside: str | None = None
    schema_before: str | None = None
    schema_after: str | None = None
    warnings: list[str] = field(default_factory=list)
    #: the URL to open (not part of reports: an environment URL may hold a password)
    url: str = field(default="", repr=False)

    def document(self) -> dict[str, Any]:
        """The JSON form stored with the failover run and written into its reports."""
        doc: dict[str, Any] = {
            "site": self.site,
            "from_site": self.from_site,
            "database": self.database,
            "source": self.source,
            "declared_at": self.declared_at.isoformat(),
            "copy": None
            if self.copy is None
            else {"snapshot": self.copy.snapshot_id, "time": self.copy.time.isoformat()},
            "rpo_seconds": self.rpo_seconds,
            "received_seq": self.received_seq,
            "received_hash": self.received_hash,
            "received_at": self.received_at,
            "skipped": [
                {"snapshot": s.snapshot_id, "time": s.time.isoformat() if s.time else None, "problem": s.problem}
                for s in self.skipped
            ],
            "kept_aside": self.kept_aside,
            "schema_before": self.schema_before,
            "schema_after": self.schema_after,
            "warnings": list(self.warnings),
        }
        doc["lost"] = self.gap().statement()
        return doc

    def gap(self) -> Gap:
        """What this promotion leaves unknown, as ``audit verify`` will state it."""
        return Gap(
            seq=self.received_seq + 1,
            site=self.site,
            from_site=self.from_site,
            source=self.source,
            received_seq=self.received_seq,
            received_at=self.received_at,
            copy_time=self.copy.time.isoformat() if self.copy else None,
            declared_at=self.declared_at.isoformat(),
            rpo_seconds=self.rpo_seconds,
        )

    def audit_details(self, run_id: str) -> dict[str, Any]:
        return {
            "run": run_id,
            "site": self.site,
            "from_site": self.from_site,
            "source": self.source,
            "copy": self.copy.snapshot_id if self.copy else None,
            "copy_time": self.copy.time.isoformat() if self.copy else None,
            "received_seq": self.received_seq,
            "received_hash": self.received_hash,
            "received_at": self.received_at,
            "declared_at": self.declared_at.isoformat(),
            "rpo_seconds": self.rpo_seconds,
            "skipped": [s.snapshot_id for s in self.skipped],
        }


class ControlPlane(Protocol):
    """Keeping the control state at every site, and handing it over at a failover (module docstring)."""

    kind: str

    def replicate(self, *, now: datetime, sites: list[str] | None = None) -> ShipResult:
        """One replication cycle to each offsite site (default: every one), the control state included."""
        ...

    def newest_copy(self, site: str) -> ControlCopy | None:
        """The newest copy at ``site``, read without a key (``None``: none there)."""
        ...

    def lag(self, site: str, now: datetime) -> float | None:
        """Seconds since the newest copy at ``site`` was taken (``None``: no copy)."""
        ...

    def promote(self, site: str, *, open_repository: RepositoryOpener, declared_at: datetime, token: str) -> Promotion:
        """Make ``site``'s copy the live control state there, at this bcpctl's schema.

        Called only once the old site is fenced. ``open_repository`` opens ``site``'s repository
        (passphrase or escrow shares) when the copy lives in it; ``token`` names what the
        promotion sets aside.
        """
        ...


# -- pure policy ------------------------------------------------------------------------------


def copy_age(copy_time: datetime | None, now: datetime) -> float | None:
    """Seconds between the copy and ``now`` (never negative; ``None`` without a copy)."""
    return None if copy_time is None else max(0.0, (now - copy_time).total_seconds())


def within_rpo(copy_time: datetime | None, now: datetime, rpo: int) -> bool:
    """Whether a disaster at ``now`` would cost the control state no more than ``rpo`` seconds."""
    age = copy_age(copy_time, now)
    return age is not None and age <= rpo


def copy_retention(config: Consortium) -> RetentionPolicy:
    """Which copies to keep: every one within the RPO window plus a day, never fewer than two."""
    keep = config.control_plane.keep or config.control_plane_rpo + KEEP_BEYOND_RPO
    return RetentionPolicy(last=KEEP_AT_LEAST, within_seconds=keep)


def measured_rpo(copy_time: datetime | None, declared_at: datetime) -> float | None:
    """The control-plane RPO a failover measured: the disaster minus the copy it promoted."""
    return None if copy_time is None else round(max(0.0, (declared_at - copy_time).total_seconds()), 3)


# -- which implementation, and recording a promotion ----------------------------------------


def state_url(config: Consortium, site: str) -> str:
    """The URL of ``site``'s control database (the default location when none is configured)."""
    return config.control_db_of(site) or default_state_url()


def control_plane(config: Consortium, config_dir: Path | None) -> ControlPlane:
    """The implementation for what the primary's control database runs on."""
    if state_url(config, config.primary_site).startswith("sqlite"):
        from failover.control_sqlite import SqliteShipping

        return SqliteShipping(config, config_dir)
    return SharedDatabase(config, config_dir)


def record_promotion(engine: Engine, promotion: Promotion, run_id: str, actor: str) -> AuditEntry:
    """The promoted state's first audit entry: the failover, and the last entry received."""
    return audited(
        engine,
        lambda conn: append(
            conn, actor=actor, action=PROMOTED, subject=run_id, details=promotion.audit_details(run_id)
        ),
    )


def received_head(engine: Engine) -> tuple[int, str, str | None]:
    """``(seq, hash, at)`` of the newest audit entry (``(0, "", None)`` for an empty chain)."""
    entries = read_entries(engine)
    return (entries[-1].seq, entries[-1].hash, entries[-1].at) if entries else (0, "", None)


class SharedDatabase:
    """A control database both sites reach where it is (PostgreSQL until its standby exists).

    Nothing is shipped and nothing restored: promotion opens it, so no copy time is known and
    the control-plane RPO is not measured (the report says so).
    """

    kind = "shared"

    def __init__(self, config: Consortium, config_dir: Path | None) -> None:
        self.config = config
        self.config_dir = config_dir

    def replicate(self, *, now: datetime, sites: list[str] | None = None) -> ShipResult:
        from replication.jobs import replicate_sites
        from replication.sync import SyncOptions

        shipped = ShipResult(self.kind, notes=["the control database is not shipped: both sites reach it"])
        for site in sites or self.config.offsite_sites:
            (run,) = replicate_sites(self.config, self.config_dir, SyncOptions(), site=site)
            shipped.runs.append(run)
            if problem := run.problem():
                shipped.problems.append(f"{site}: {problem}")
        return shipped

    def newest_copy(self, site: str) -> ControlCopy | None:
        return None

    def lag(self, site: str, now: datetime) -> float | None:
        return None

    def promote(self, site: str, *, open_repository: RepositoryOpener, declared_at: datetime, token: str) -> Promotion:
        from dc.schema import database_name
        from dc.state import open_state

        url = state_url(self.config, site)
        engine = open_state(url)
        try:
            name = database_name(engine)
            seq, digest, at = received_head(engine)
        finally:
            engine.dispose()
        promotion = Promotion(site, self.config.primary_site, name, "kept", declared_at, url=url)
        promotion.received_seq, promotion.received_hash, promotion.received_at = seq, digest, at
        promotion.warnings.append(
            f"control state at {site}: {name} is used where it is; nothing was shipped, the control-plane RPO "
            "is not measured"
        )
        return promotion


# -- what the CLI and the demo ask ----------------------------------------------------------


@dataclass(frozen=True)
class SiteCopy:
    site: str
    newest: ControlCopy | None
    age_seconds: float | None
    within_rpo: bool
    problem: str | None = None


@dataclass
class ControlStatus:
    """``bcpctl control status``: the control-plane RPO and how old each offsite site's copy is."""

    kind: str
    rpo_seconds: int
    #: the site this bcpctl runs at, and its control database (password hidden)
    site: str
    database: str
    sites: list[SiteCopy] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.within_rpo for s in self.sites)


def control_status(config: Consortium, config_dir: Path | None, *, now: datetime) -> ControlStatus:
    """The newest copy of the control state at every offsite site, read without a key."""
    from dc.config import local_site
    from dc.errors import BcpError

    plane = control_plane(config, config_dir)
    here = local_site(config)
    rpo = config.control_plane_rpo
    status = ControlStatus(plane.kind, rpo, here, _display(state_url(config, here)))
    for site in config.offsite_sites:
        try:
            newest = plane.newest_copy(site)
        except BcpError as exc:
            status.sites.append(SiteCopy(site, None, None, False, exc.message))
            continue
        when = newest.time if newest else None
        status.sites.append(SiteCopy(site, newest, copy_age(when, now), within_rpo(when, now, rpo)))
    return status


def _display(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
