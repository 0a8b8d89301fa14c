"""The control plane survives the disaster it manages: the control state at every site.

The control state — drill history, export requests and their approvals, partners and portal
tokens, job history, the hash-chained audit log — is what bcpctl needs to carry on at the
offsite once the primary is gone (DESIGN "The control plane is part of what must survive").
Every site has its own control database: ``sites.<name>.control_db``, by default the top-level
``control_db`` (the same location on that site's own machines; on one machine, give each
site its own). ``$BCPCTL_SITE`` tells a bcpctl which site it runs at (default: the primary);
``failover execute`` and ``failback`` need it said (``--site``), because they move the state.

The copy at the second site must never be older than ``control_plane.rpo`` (default: the
shortest system RPO). It always goes from the *active* site — the primary, or the offsite a
failover made active — to where that site's second copy goes (:mod:`failover.activesite`).
How it is kept fresh depends on what the control database runs on, so failover, failback, the
scheduler, the metrics and the CLI know only :class:`ControlPlane`:

``replicate(cycle)``
    one replication cycle from the active site, the control state included. Embedded SQLite:
    a consistent online copy of the active site's database, taken into its repository as a
    snapshot of the reserved system :data:`CONTROL_SYSTEM` — so it is encrypted, deduplicated
    and verifiable without a key like every backup, and never shipped in the clear — then
    shipped by the normal keyless replication. PostgreSQL: a physical streaming standby
    replicates continuously; this writes a heartbeat through it and records how far it got.
``newest_copy(site)`` / ``lag(site, now)``
    the newest copy at ``site`` (its time is the control-plane recovery point) and its age:
    what a disaster now would cost the control state.
``promote(site, ...)``
    a failover makes ``site``'s copy the live control state, right after the old site is
    fenced and before anything is restored. SQLite: the newest copy that verifies (SHA-256 of
    the restored file as recorded, ``PRAGMA integrity_check``, row counts) is put at the site's
    ``control_db``; a damaged newer copy is skipped with a warning naming the interval lost
    with it. PostgreSQL: ``pg_promote()`` on the standby, refused while the old primary's
    control database still accepts writes.
``prepare_handover`` / ``hand_over`` / ``follow``
    failback moves the live state back without losing anything: the target is made ready
    (PostgreSQL: the old primary rebuilt as a standby of the active site, ``pg_rewind`` else
    ``pg_basebackup``), then, once the systems are back, the active site's state stops
    changing and the target takes it over (SQLite: a final copy shipped and promoted;
    PostgreSQL: the old site fenced read-only, the standby caught up and promoted), and the
    old site follows the new one (SQLite: its database kept aside; PostgreSQL: rebuilt as
    the new primary's standby).

:class:`~failover.control_sqlite.SqliteShipping` and
:class:`~failover.control_postgres.PostgresStandby` implement it; a control database that every
site names alike on PostgreSQL is one server they share
(:class:`~failover.control_shared.SharedDatabase`), used where it is and never shipped.

Every promotion's first audit entry (:data:`dc.continuation.PROMOTED`, written by
:func:`record_promotion`) records the switch and the hash of the last entry received, so the
chain verifies across it and ``bcpctl audit verify`` states which entries stayed at the old
site (:mod:`dc.continuation`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from sqlalchemy import Engine

from backup.repository import Repository
from backup.retention import RetentionPolicy
from dc.audit import AuditEntry, append, audited, read_entries
from dc.config import Consortium
from dc.continuation import PROMOTED, Gap
from dc.errors import N_, BcpError, Message, ProblemFound, message_of
from dc.state import default_state_url

if TYPE_CHECKING:
    from failover.activesite import ActiveSite
    from replication.ledger import Ledger
    from replication.sync import SyncResult

#: the reserved system of control-state snapshots: configured system ids start with [a-z0-9]
CONTROL_SYSTEM = "_control"
#: the snapshot tag naming the site whose control state a copy holds (untagged: the primary's)
COPY_SITE_TAG = "control_site"
#: copies are kept for the RPO window plus this much
KEEP_BEYOND_RPO = 86400
#: and never fewer than this many, so a damaged newest copy always has one to fall back to
KEEP_AT_LEAST = 2

#: where a promoted state came from: a shipped copy restored, a streaming standby promoted, the
#: state already there kept (a run again, or one database shared), or nothing (starts empty)
Source = Literal["restored", "streamed", "kept", "empty"]
RepositoryOpener = Callable[[], AbstractContextManager[Repository]]


class ControlPlaneError(ProblemFound):
    """The control state could not be shipped or promoted (exit 1); the message says what to do."""


@dataclass(frozen=True)
class ControlCopy:
    """One copy of the active site's control state at a site."""

    site: str
    #: when the copy was taken at the active site: the control-plane recovery point
    time: datetime
    #: the repository snapshot holding it (SQLite shipping)
    snapshot_id: str | None = None
    #: the WAL position the standby had replayed (PostgreSQL)
    position: str | None = None


@dataclass(frozen=True)
class Cycle:
    """One replication cycle as the scheduler or ``control ship`` asks for it."""

    now: datetime
    #: where to ship (``None``: every site of the active site's second copy)
    sites: list[str] | None = None
    #: the active site (``None``: the primary)
    active: ActiveSite | None = None
    #: where the runs are recorded (``None``: the active site's control database)
    ledger: Ledger | None = None


@dataclass(frozen=True)
class PromotionOrder:
    """What a failover or failback gives the control plane to make a site's state live."""

    #: opens the promoted site's repository (passphrase or escrow shares) when the copy lives in it
    open_repository: RepositoryOpener
    declared_at: datetime
    #: names what the promotion sets aside
    token: str


@dataclass
class ShipResult:
    """What one ``replicate`` did: the copy taken, and each target site's newest copy afterwards."""

    kind: str
    #: the site the control state (and the systems) shipped from: the active site
    source: str = ""
    copy: ControlCopy | None = None
    bytes_added: int = 0
    #: older copies the retention removed at the source (replication removes them at targets later)
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
    """The control state a site took over: where it came from and what it lacks."""

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
    #: a handover at failback: the old site was fenced first, so nothing written there is missing
    planned: bool = False
    warnings: list[str] = field(default_factory=list)
    #: the URL to open (not part of reports: an environment URL may hold a password)
    url: str = field(default="", repr=False)

    def document(self) -> dict[str, Any]:
        """The JSON form stored with the failover or failback run and written into its reports."""
        doc: dict[str, Any] = {
            "site": self.site,
            "from_site": self.from_site,
            "database": self.database,
            "source": self.source,
            "planned": self.planned,
            "declared_at": self.declared_at.isoformat(),
            "copy": None
            if self.copy is None
            else {
                "snapshot": self.copy.snapshot_id,
                "position": self.copy.position,
                "time": self.copy.time.isoformat(),
            },
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
            planned=self.planned,
        )

    def audit_details(self, run_id: str) -> dict[str, Any]:
        return {
            "run": run_id,
            "site": self.site,
            "from_site": self.from_site,
            "source": self.source,
            "planned": self.planned,
            "copy": self.copy.snapshot_id if self.copy else None,
            "position": self.copy.position if self.copy else None,
            "copy_time": self.copy.time.isoformat() if self.copy else None,
            "received_seq": self.received_seq,
            "received_hash": self.received_hash,
            "received_at": self.received_at,
            "declared_at": self.declared_at.isoformat(),
            "rpo_seconds": self.rpo_seconds,
            "skipped": [s.snapshot_id for s in self.skipped],
        }


class ControlPlane(Protocol):
    """Keeping the control state at every site, and handing it over (module docstring)."""

    kind: str

    def replicate(self, cycle: Cycle) -> ShipResult:
        """One replication cycle from the active site (default: the primary) to each of the cycle's
        sites (default: every site of its second copy), the control state included."""
        ...

    def newest_copy(self, site: str) -> ControlCopy | None:
        """The newest copy at ``site``, read without a key (``None``: none there)."""
        ...

    def lag(self, site: str, now: datetime) -> float | None:
        """Seconds since the newest copy at ``site`` was taken (``None``: no copy)."""
        ...

    def promote(self, site: str, order: PromotionOrder, from_site: str | None = None) -> Promotion:
        """At a failover: make ``site``'s copy of ``from_site``'s state (default: the primary's) the
        live control state there, at this bcpctl's schema.

        Called only once the old site is fenced.
        """
        ...

    def prepare_handover(self, from_site: str, to_site: str, *, token: str) -> list[str]:
        """Before a failback changes anything: make ``to_site`` ready to take ``from_site``'s state
        over; returns notes for the report. Raises when it cannot be made ready."""
        ...

    def hand_over(self, to_site: str, order: PromotionOrder, *, from_site: str) -> Promotion:
        """At failback, once the systems are back at ``to_site``: stop ``from_site``'s state from
        changing and make ``to_site`` hold all of it, live. Nothing changes at ``from_site`` but
        its fence when this raises."""
        ...

    def follow(self, site: str, *, of: str, token: str) -> list[str]:
        """After a handover ``site`` no longer holds the live state: it follows ``of`` again.
        Returns warnings (what an operator still has to do), never raises for what is left."""
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


def plane_kind(config: Consortium) -> str:
    """Which implementation the configuration asks for: ``sqlite-shipping``, ``postgres-standby``
    or ``shared`` (every site names the primary's PostgreSQL database: one server they share)."""
    primary = state_url(config, config.primary_site)
    if primary.startswith("sqlite"):
        return "sqlite-shipping"
    if all(state_url(config, site) == primary for site in config.sites):
        return "shared"
    return "postgres-standby"


# -- where the state lives, and recording a promotion ---------------------------------------


def state_url(config: Consortium, site: str) -> str:
    """The URL of ``site``'s control database (the default location when none is configured)."""
    return config.control_db_of(site) or default_state_url()


def serving(config: Consortium, active: ActiveSite | None) -> tuple[str, tuple[str, ...]]:
    """``(the active site, the sites its second copy goes to)``; without ``active``, the primary's."""
    if active is None:
        return config.primary_site, tuple(config.offsite_sites)
    return active.site, active.second_copy


def ship_systems(
    config: Consortium, config_dir: Path | None, site: str, active: ActiveSite | None, ledger: Ledger | None
) -> SyncResult:
    """The systems' keyless replication of one cycle, from the active site to ``site``."""
    from replication.jobs import replicate_sites
    from replication.sync import SyncOptions

    if active is not None and active.failed_over:
        from failover.secondcopy import replicate_second_copy
        from replication.jobs import open_ledger

        return replicate_second_copy(config, config_dir, active, site, ledger=ledger or open_ledger(config.control_db))
    (run,) = replicate_sites(config, config_dir, SyncOptions(), site=site, ledger=ledger)
    return run


def ship_each(
    config: Consortium, config_dir: Path | None, cycle: Cycle, shipped: ShipResult, targets: tuple[str, ...]
) -> Iterator[tuple[str, SyncResult | None]]:
    """The systems' replication to each site of the cycle, each run and problem recorded in
    ``shipped``; yields ``(site, run)``, ``run`` ``None`` where the site could not be reached, so
    one unreachable site never stops the others."""
    for site in cycle.sites or targets:
        try:
            run = ship_systems(config, config_dir, site, cycle.active, cycle.ledger)
        except BcpError as exc:
            shipped.problems.append(Message(N_("{site}: {reason}"), site=site, reason=message_of(exc)))
            yield site, None
            continue
        shipped.runs.append(run)
        if problem := run.problem():
            shipped.problems.append(Message(N_("{site}: {reason}"), site=site, reason=problem))
        yield site, run


def record_promotion(engine: Engine, promotion: Promotion, run_id: str, actor: str) -> AuditEntry:
    """The promoted state's first audit entry: the switch, and the last entry received."""
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


def head_of(url: str) -> tuple[int, str, str | None]:
    """:func:`received_head` of the database at ``url``."""
    from dc.state import open_state

    engine = open_state(url)
    try:
        return received_head(engine)
    finally:
        engine.dispose()


def upgrade_promoted(url: str) -> tuple[str | None, str | None]:
    """Bring a promoted database to this bcpctl's schema: ``(revision before, after)``."""
    from dc import schema
    from dc.state import connect

    engine = connect(url)
    try:
        found = schema.status(engine)
        if found.state == "current":
            return found.revision, found.revision
        if found.state == "ahead":
            raise ControlPlaneError(
                N_(
                    "the promoted control database is at revision {revision}, newer than this bcpctl (up to "
                    "{head}): run the bcpctl version of the primary"
                ),
                revision=found.revision,
                head=found.head,
            )
        result = schema.upgrade(engine)
        return result.before, result.after
    finally:
        engine.dispose()


def display_url(url: str) -> str:
    """A database URL for reports: the password hidden."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
