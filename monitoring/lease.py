"""The leader lease: at most one active scheduler per control database.

APScheduler 3.x must never share a job store between two schedulers (user guide; FAQ: "You
can't ... will lead to incorrect scheduler behavior like duplicate execution"). Every
``bcpctl serve`` therefore competes for one lease and only the holder starts its scheduler;
the others wait as standbys and take over when the holder dies.

* PostgreSQL: a session-level advisory lock held on a dedicated connection. The server
  releases it the moment that session ends, so a killed leader frees it at once; TCP
  keepalives on the session bound how long a vanished host keeps it (~30 s).
* SQLite: a lock row with an expiry that the leader renews every ``ttl / 3``. The leader
  stops scheduling as soon as its own deadline passes without a renewal, before any standby
  may see the row expire, so two leaders never overlap on one machine's clock.

Every term is recorded in ``scheduler_terms`` (who led, which bcpctl version, from when to
when); :func:`current_holder` tells who holds the lease now, on the schema of any release, so
that a schema upgrade never runs under a scheduler of another version.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as distribution_version
from typing import Protocol

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Integer,
    String,
    Table,
    case,
    create_engine,
    insert,
    inspect,
    text,
    update,
)
from sqlalchemy.pool import NullPool

from dc.clock import utcnow
from dc.state import UtcDateTime, inserted_id, metadata
from monitoring.dialect import insert_ignore, is_postgres

log = logging.getLogger("bcpctl.lease")

LEASE_NAME = "scheduler"
#: a released lease: expired long ago, so a standby takes over at once
RELEASED = datetime(1970, 1, 1, tzinfo=UTC)


def bcpctl_version() -> str:
    try:
        return distribution_version("bcpctl")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


scheduler_lease = Table(
    "scheduler_lease",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(200), nullable=False),
    #: compared with the clock of the one machine that shares a SQLite file
    Column("acquired_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("version", String(64)),
)

scheduler_terms = Table(
    "scheduler_terms",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("holder", String(200), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("ended_at", UtcDateTime),
    Column("end_reason", String(64)),
    Column("version", String(64)),
)


def advisory_key(name: str = LEASE_NAME) -> int:
    """A stable signed 64-bit key for ``pg_try_advisory_lock``, derived from the lease name."""
    digest = hashlib.sha256(f"bcpctl/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class Lease(Protocol):
    holder: str

    def try_acquire(self) -> bool:
        """Become the holder if nobody holds the lease; ``True`` if this process holds it now."""
        ...

    def renew(self) -> bool:
        """Keep holding; ``False`` means the lease is lost and the caller must stop scheduling."""
        ...

    def release(self) -> None: ...


class SqliteLease:
    def __init__(self, engine: Engine, holder: str, ttl: float) -> None:
        self.engine = engine
        self.holder = holder
        self.ttl = ttl
        self._deadline = 0.0  # monotonic time after which this process must consider itself out

    def _claim(self, *, steal_expired: bool) -> bool:
        started = time.monotonic()
        now = utcnow()
        expires = now + timedelta(seconds=self.ttl)
        version = bcpctl_version()
        with self.engine.begin() as conn:
            inserted = insert_ignore(
                conn,
                scheduler_lease,
                name=LEASE_NAME,
                holder=self.holder,
                acquired_at=now,
                expires_at=expires,
                version=version,
            )
            if not inserted:
                mine = scheduler_lease.c.holder == self.holder
                condition = (mine | (scheduler_lease.c.expires_at < now)) if steal_expired else mine
                took = conn.execute(
                    update(scheduler_lease)
                    .where(scheduler_lease.c.name == LEASE_NAME, condition)
                    .values(
                        holder=self.holder,
                        acquired_at=case((mine, scheduler_lease.c.acquired_at), else_=now),
                        expires_at=expires,
                        version=version,
                    )
                ).rowcount
                if took != 1:
                    return False
        # Measured from before the statement: our deadline can only be earlier than the row's.
        self._deadline = started + self.ttl
        return True

    def try_acquire(self) -> bool:
        return self._claim(steal_expired=True)

    def renew(self) -> bool:
        if time.monotonic() >= self._deadline:
            return False
        try:
            return self._claim(steal_expired=False) and time.monotonic() < self._deadline
        except Exception as exc:  # the database is unreachable: we cannot prove we still hold it
            log.warning("lease renewal failed: %s", type(exc).__name__)
            return time.monotonic() < self._deadline - self.ttl / 3

    def release(self) -> None:
        self._deadline = 0.0
        with self.engine.begin() as conn:
            conn.execute(
                update(scheduler_lease)
                .where(scheduler_lease.c.name == LEASE_NAME, scheduler_lease.c.holder == self.holder)
                .values(expires_at=RELEASED)
            )


class PostgresLease:
    # Server-side keepalives end the leader's session (and free the lock) ~30 s after its
    # host vanishes without closing TCP; the default of 2 hours would stall a takeover.
    _SESSION_SETTINGS = (
        "SET tcp_keepalives_idle = 10",
        "SET tcp_keepalives_interval = 5",
        "SET tcp_keepalives_count = 3",
    )

    def __init__(self, engine: Engine, holder: str) -> None:
        self.holder = holder
        self.key = advisory_key()
        # A dedicated connection outside the pool: the lock lives exactly as long as it does.
        self._engine = create_engine(
            engine.url,
            poolclass=NullPool,
            connect_args={"connect_timeout": 5, "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2},
        )
        self._conn: Connection | None = None

    @property
    def session_name(self) -> str:
        return session_name(bcpctl_version(), self.holder)

    def try_acquire(self) -> bool:
        if self._conn is not None:
            return self.renew()
        conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            for statement in self._SESSION_SETTINGS:
                conn.execute(text(statement))
            # The lock and who holds it are one fact: a starting serve reads the holder's name
            # and version from the locking session itself, never from a term not yet recorded.
            conn.execute(text("SELECT set_config('application_name', :name, false)"), {"name": self.session_name})
            got = conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}).scalar()
        except Exception:
            conn.close()
            raise
        if got:
            self._conn = conn
            return True
        conn.close()
        return False

    def renew(self) -> bool:
        if self._conn is None:
            return False
        try:
            held = _advisory_lock_held(self._conn, by_this_session=True)
        except Exception as exc:
            log.warning("lease connection lost: %s", type(exc).__name__)
            self._drop()
            return False
        if not held:
            self._drop()
        return bool(held)

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.invalidate()
                conn.close()

    def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # the session ending frees the lock anyway
                self._conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
            self._drop()
        self._engine.dispose()


def open_lease(engine: Engine, holder: str, ttl: float) -> Lease:
    if is_postgres(engine):
        return PostgresLease(engine, holder)
    return SqliteLease(engine, holder, ttl)


def begin_term(engine: Engine, holder: str) -> int:
    with engine.begin() as conn:
        values = {"holder": holder, "started_at": utcnow(), "version": bcpctl_version()}
        return inserted_id(conn.execute(insert(scheduler_terms).values(**values)))


def end_term(engine: Engine, term_id: int, reason: str, when: datetime | None = None) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(scheduler_terms)
            .where(scheduler_terms.c.id == term_id, scheduler_terms.c.ended_at.is_(None))
            .values(ended_at=when or utcnow(), end_reason=reason)
        )


NOT_RECORDED = "(a scheduler whose term is not recorded yet)"


@dataclass(frozen=True)
class LeaseHolder:
    holder: str
    #: ``None`` when the holder's release did not record it (the releases before 0002 of the schema)
    version: str | None


#: how a lease session names itself in ``pg_stat_activity.application_name``
SESSION_PREFIX = "bcpctl-lease"
#: PostgreSQL keeps the first NAMEDATALEN - 1 bytes of ``application_name``
_APPLICATION_NAME_MAX = 63


def session_name(version: str, holder: str) -> str:
    """``bcpctl-lease <version> <holder>``, ASCII, cut to what PostgreSQL keeps (the holder's end
    may be lost, never the version, which comes first)."""
    name = f"{SESSION_PREFIX} {version} {holder}".encode("ascii", "replace").decode()
    return name[:_APPLICATION_NAME_MAX]


def _from_session_name(name: str | None) -> LeaseHolder | None:
    parts = (name or "").split(" ", 2)
    if len(parts) == 3 and parts[0] == SESSION_PREFIX:
        return LeaseHolder(parts[2], parts[1])
    return None


def current_holder(engine: Engine) -> LeaseHolder | None:
    """The process that holds the scheduler lease now, if any, read on whatever schema the database has.

    Called before the schema is upgraded, so it reads with plain SQL and asks which columns
    exist. PostgreSQL: another session holds the advisory lock, and that session's
    ``application_name`` names its holder and version (set before the lock was taken, so a
    leader is known from its first instant); a release that did not name its session is named
    by its newest open term. SQLite: the lease row has not expired.
    """
    with engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
        if is_postgres(conn):
            locker = _advisory_lock_session(conn)
            if locker is None:
                return None
            if (named := _from_session_name(locker)) is not None:
                return named
            # a release from before lease sessions named themselves: its newest open term
            if "scheduler_terms" not in tables:
                return LeaseHolder(NOT_RECORDED, None)
            row = conn.execute(
                text(
                    f"SELECT holder, {_version_column(conn, 'scheduler_terms')} FROM scheduler_terms"
                    " WHERE ended_at IS NULL ORDER BY id DESC LIMIT 1"
                )
            ).first()
            return LeaseHolder(row[0], row[1]) if row is not None else LeaseHolder(NOT_RECORDED, None)
        if "scheduler_lease" not in tables:
            return None
        row = conn.execute(
            text(
                f"SELECT holder, {_version_column(conn, 'scheduler_lease')}, expires_at FROM scheduler_lease"
                " WHERE name = :name"
            ),
            {"name": LEASE_NAME},
        ).first()
    if row is None or _instant(row[2]) <= utcnow():
        return None
    return LeaseHolder(row[0], row[1])


def _version_column(conn: Connection, table: str) -> str:
    return "version" if "version" in {column["name"] for column in inspect(conn).get_columns(table)} else "NULL"


def _advisory_lock_held(conn: Connection, *, by_this_session: bool) -> bool:
    """Whether the scheduler's advisory lock is held, by ``conn``'s session or by another one."""
    key = advisory_key()
    held = conn.execute(
        text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            f" AND pid {'=' if by_this_session else '<>'} pg_backend_pid() AND classid = :hi AND objid = :lo"
        ),
        {"hi": (key >> 32) & 0xFFFFFFFF, "lo": key & 0xFFFFFFFF},
    ).scalar()
    return bool(held)


def _advisory_lock_session(conn: Connection) -> str | None:
    """The ``application_name`` ('' when unset) of the other session holding the scheduler's
    advisory lock; ``None`` when no other session holds it."""
    key = advisory_key()
    row = conn.execute(
        text(
            "SELECT coalesce(a.application_name, '') FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.pid <> pg_backend_pid()"
            " AND l.classid = :hi AND l.objid = :lo LIMIT 1"
        ),
        {"hi": (key >> 32) & 0xFFFFFFFF, "lo": key & 0xFFFFFFFF},
    ).first()
    return None if row is None else str(row[0])


def _instant(value: object) -> datetime:
    """An expiry as either release stored it: Unix seconds (before 0002) or a SQLite DATETIME (UTC)."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)
