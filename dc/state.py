"""The control-state database: what bcpctl did and when (runs, results, leases).

SQLite by default, PostgreSQL when the consortium runs the controller redundantly. Each
package declares its own tables on :data:`metadata` in its own module (domain state lives in
its domain, and this bottom layer never imports the layers above); the schema itself is
created and changed only by the migrations of :mod:`dc.schema`, so :func:`open_state` hands
out an engine whose every table exists in its current shape.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    CursorResult,
    DateTime,
    Dialect,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    create_engine,
    event,
)
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

from dc import schema
from dc.errors import N_, BcpError, ConfigError, Message, ProblemFound
from dc.schema import ControlStateMissing
from dc.siteenv import SITE_ENV
from dc.sqlitewal import use_wal

metadata = MetaData()

#: the stored times bcpctl reads back: far enough inside ``datetime``'s range that adding an RPO,
#: a drill's age or a retention to one, or showing it in JST, cannot overflow
READABLE_TIMES = (datetime(1000, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC))


class StoredTimeInvalid(ProblemFound):
    """A time column of the control database holds what bcpctl never wrote (exit 1).

    SQLite keeps any text in a DATETIME column, so an edit or a damaged copy reaches the
    reader; the value is kept (``value``) so that the reader can find and name its row
    (:func:`damaged_time`).
    """

    def __init__(self, value: object) -> None:
        text = repr(value.isoformat(sep=" ")) if isinstance(value, datetime) else repr(value)
        shown = text if len(text) <= 60 else text[:57] + "..."
        super().__init__(N_("a stored time holds {shown}, which is not a time bcpctl wrote"), shown=shown)
        self.value = value


class UtcDateTime(TypeDecorator[datetime]):
    """The one timestamp type of the control database: stored in UTC, read back timezone-aware.

    SQLite keeps a DATETIME as text without an offset, so an aware value is turned into UTC
    before it is written (otherwise a JST time would be stored as its wall clock) and gets
    UTC back when read; PostgreSQL's ``timestamptz`` answers in the session's zone, which is
    normalised to UTC as well. A naive value is taken as UTC, as everything on bcpctl's clock is.
    What does not read back as such a time — text that does not parse, a year outside
    :data:`READABLE_TIMES` — is :class:`StoredTimeInvalid`, never a bare ``ValueError``.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise StoredTimeInvalid(value)
        try:
            utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        except OverflowError:
            raise StoredTimeInvalid(value) from None
        if not READABLE_TIMES[0] <= utc < READABLE_TIMES[1]:
            raise StoredTimeInvalid(value)
        return utc

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], datetime | None] | None:
        """:meth:`process_result_value` after the dialect's own parsing, whose ``ValueError`` on
        text that is no time (SQLite) becomes :class:`StoredTimeInvalid` naming that text."""
        composed = super().result_processor(dialect, coltype)
        if composed is None:
            return None
        process = composed

        def parse(value: Any) -> datetime | None:
            try:
                return process(value)
            except (ValueError, TypeError, OverflowError):
                raise StoredTimeInvalid(value) from None

        return parse


STATE_ENV = "BCPCTL_CONTROL_DB"

backup_runs = Table(
    "backup_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("system", String(64), index=True),
    Column("tenant", String(64)),
    Column("repository", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("snapshot_id", String(64)),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime),
    Column("ok", Boolean, nullable=False, default=False),
    Column("bytes_in", BigInteger, default=0),
    Column("bytes_added", BigInteger, default=0),
    Column("seconds", Float, default=0.0),
    Column("error", Text),
    #: ``error`` as its catalog template and parameters (dc.storedmessages; migration 0012)
    Column("error_message", Text),
    # ransomware signals of the data this backup added (backup.anomaly; migration 0010)
    Column("compressibility", Float),
    Column("new_fraction", Float),
    Column("changed_fraction", Float),
    #: changed files whose known content type became none (backup.contenttype; migration 0011)
    Column("type_lost_fraction", Float),
    #: why the backup looked like mass encryption, when it did
    Column("anomaly", Text),
    #: the snapshot before an anomalous backup: the last known good state
    Column("last_known_good", String(64)),
)
# The metrics' newest-row lookups per system stay index-only as the table grows by ~100 rows a
# day per system.
Index("ix_backup_runs_system_ok_id", backup_runs.c.system, backup_runs.c.ok, backup_runs.c.id)
# The replication backlog reads only the runs since the oldest offsite snapshot, not the history.
Index("ix_backup_runs_repository_started", backup_runs.c.repository, backup_runs.c.started_at)

#: Each system's newest run and newest successful run per repository, kept beside every insert
#: into ``backup_runs`` (same transaction), so ``/metrics`` reads one row per series instead of
#: searching a history that grows by ~100 rows a day per system (1,452 systems: issue 23).
backup_latest = Table(
    "backup_latest",
    metadata,
    Column("system", String(64), primary_key=True),
    Column("repository", Text, primary_key=True),
    Column("tenant", String(64)),
    Column("last_run_id", Integer, nullable=False),
    Column("last_ok", Boolean, nullable=False),
    Column("ok_run_id", Integer),
    Column("ok_finished_at", UtcDateTime),
    Column("ok_seconds", Float),
    Column("ok_bytes_in", BigInteger),
    Column("ok_bytes_added", BigInteger),
    #: the newest success looked like mass encryption (backup/anomaly.py): bcp_backup_anomaly
    Column("ok_anomaly", Boolean),
)


def inserted_id(result: CursorResult[Any]) -> int:
    """The integer primary key of the one row an INSERT just added."""
    key = result.inserted_primary_key
    if key is None:
        raise RuntimeError("the INSERT reported no primary key")
    return int(key[0])


def default_state_url() -> str:
    """``$BCPCTL_CONTROL_DB``, else a SQLite file under ``$XDG_STATE_HOME/bcpctl``."""
    if url := os.environ.get(STATE_ENV):
        return url
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "bcpctl"
    return f"sqlite:///{base / 'control.db'}"


#: what bcpctl runs its control state on (DESIGN "The control plane"): embedded or PostgreSQL
SUPPORTED_FORMS = "sqlite:///PATH or postgresql://USER@HOST/DBNAME"


def check_state_url(url: str, field: str) -> None:
    """Refuse, as a configuration error naming ``field``, a URL bcpctl cannot run its state on.

    Only the scheme is quoted: a URL from the environment may carry a password.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            N_("{field} is not a database URL; use {SUPPORTED_FORMS}"), field=field, SUPPORTED_FORMS=SUPPORTED_FORMS
        ) from None
    backend, driver = parsed.get_backend_name(), parsed.drivername
    if backend == "sqlite" and driver in ("sqlite", "sqlite+pysqlite"):
        return
    if driver in ("postgresql", "postgresql+psycopg"):
        return
    raise ConfigError(
        N_("{field}: '{driver}' is not supported; use {SUPPORTED_FORMS}"),
        field=field,
        driver=driver,
        SUPPORTED_FORMS=SUPPORTED_FORMS,
    )


def connect(url: str | None = None, *, create: bool = False) -> Engine:
    """An engine on the control database as it is, schema unchecked: for :mod:`dc.schema` and its commands.

    A SQLite file that does not exist is :class:`~dc.schema.ControlStateMissing` unless
    ``create`` (then its directory is made too): connecting would create it, empty.
    """
    check_state_url(url or default_state_url(), "control_db" if url else f"${STATE_ENV}")
    given = url
    url = url or default_state_url()
    if url.startswith("sqlite:"):
        if (path := sqlite_file(url)) is not None:
            if create:
                path.parent.mkdir(parents=True, exist_ok=True)
            elif not path.exists():
                raise ControlStateMissing(missing_message(path, given))
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            # WAL lets the scheduler, the CLI and scrapes read while a job writes.
            use_wal(dbapi_conn, 30.0)
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
    else:
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        engine = create_engine(url, pool_pre_ping=True)
    return engine


def sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` URL; ``None`` for an in-memory database."""
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    return Path(database) if database and database != ":memory:" else None


def missing_message(path: Path, url: str | None) -> str:
    """Why a SQLite control database is missing and what to do, on one line (no URL: it may carry a password)."""
    if url is None and os.environ.get(STATE_ENV):
        where = Message(N_("(${env}): set ${env} to this site's control database"), env=STATE_ENV)
    elif url is None:
        where = Message(
            N_("(the default under $XDG_STATE_HOME): set ${env} to this site's control database"), env=STATE_ENV
        )
    elif site := os.environ.get(SITE_ENV):
        where = Message(N_("(site '{site}' from ${env}): check the site and its control_db"), site=site, env=SITE_ENV)
    else:
        where = Message(N_("(the primary site's: ${env} is not set): at another site, set ${env} to it"), env=SITE_ENV)
    return Message(
        N_(
            "the control database {path} does not exist {where}; nothing was created: "
            "a new installation creates it with bcpctl db upgrade"
        ),
        path=path,
        where=where,
    )


def open_state(url: str | None = None, *, create: bool = False) -> Engine:
    """Connect to the control database, its schema at the migrations' head (:func:`dc.schema.require_head`).

    A database that does not exist, or has no tables, is :class:`~dc.schema.ControlStateMissing`
    (exit 2) unless ``create``: a read or an ordinary command that made an empty one would
    believe it, and at the wrong site (``$BCPCTL_SITE`` unset after a failover) report from a
    control state that never saw the failover. ``create`` is for what legitimately begins a
    control state: ``bcpctl db upgrade``, the demo's set-up, and a failover that finds no copy of
    the control state at the site taking over (it warns that it starts empty). An existing
    database that an older bcpctl left behind is refused until ``bcpctl db upgrade`` (or the
    start of ``bcpctl serve``) upgrades it.
    """
    engine = connect(url, create=create)
    try:
        schema.require_head(engine, create=create)
    except BaseException:
        engine.dispose()
        raise
    return engine


class StoredRowDamaged(StoredTimeInvalid):
    """:class:`StoredTimeInvalid` with its row found: table, key, column and value (exit 1)."""

    def __init__(self, table: str, key: object, column: str, value: object) -> None:
        super().__init__(value)
        BcpError.__init__(
            self,
            N_(
                "the control database's {table} row {key}: {column} holds {shown}: correct or delete that row "
                "(nothing was changed)"
            ),
            table=table,
            key=key,
            column=column,
            shown=self.params["shown"],
        )
        self.table, self.key, self.column = table, key, column


def damaged_time(engine: Engine, table: Table) -> StoredRowDamaged | None:
    """The first row of ``table`` with a stored time that does not read back, named; ``None`` if none.

    Each time column is read as the raw value the driver returns and given to
    :class:`UtcDateTime`'s own processing, so "damaged" means exactly what a reader meets.
    """
    from sqlalchemy import select, type_coerce

    times = [column for column in table.columns if isinstance(column.type, UtcDateTime)]
    read = UtcDateTime().dialect_impl(engine.dialect).result_processor(engine.dialect, None) or (lambda value: value)
    keys = list(table.primary_key.columns)
    query = select(*keys, *(type_coerce(column, Text).label(f"time_{column.name}") for column in times))
    with engine.connect() as conn:
        for row in conn.execute(query):
            for column in times:
                try:
                    read(row._mapping[f"time_{column.name}"])
                except StoredTimeInvalid as exc:
                    key = ", ".join(str(value) for value in row[: len(keys)])
                    return StoredRowDamaged(table.name, key, column.name, exc.value)
    return None


@contextmanager
def naming_damaged_rows(engine: Engine, *tables: Table) -> Iterator[None]:
    """Turn a :class:`StoredTimeInvalid` met while reading ``tables`` into the row that holds it."""
    try:
        yield
    except StoredRowDamaged:
        raise
    except StoredTimeInvalid as exc:
        for table in tables:
            if (found := damaged_time(engine, table)) is not None:
                raise found from None
        raise exc from None
