"""The control-state database: what bcpctl did and when (runs, results, leases).

SQLite by default, PostgreSQL when the consortium runs the controller redundantly. Each
package declares its own tables on :data:`metadata` in its own module (domain state lives in
its domain, and this bottom layer never imports the layers above); the schema itself is
created and changed only by the migrations of :mod:`dc.schema`, so :func:`open_state` hands
out an engine whose every table exists in its current shape.
"""

from __future__ import annotations

import os
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
from dc.errors import ConfigError

metadata = MetaData()


class UtcDateTime(TypeDecorator[datetime]):
    """The one timestamp type of the control database: stored in UTC, read back timezone-aware.

    SQLite keeps a DATETIME as text without an offset, so an aware value is turned into UTC
    before it is written (otherwise a JST time would be stored as its wall clock) and gets
    UTC back when read; PostgreSQL's ``timestamptz`` answers in the session's zone, which is
    normalised to UTC as well. A naive value is taken as UTC, as everything on bcpctl's clock is.
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
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


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
)
# The metrics' newest-row lookups per system stay index-only as the table grows by ~100 rows a
# day per system.
Index("ix_backup_runs_system_ok_id", backup_runs.c.system, backup_runs.c.ok, backup_runs.c.id)


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
        raise ConfigError(f"{field} is not a database URL; use {SUPPORTED_FORMS}") from None
    backend, driver = parsed.get_backend_name(), parsed.drivername
    if backend == "sqlite" and driver in ("sqlite", "sqlite+pysqlite"):
        return
    if driver in ("postgresql", "postgresql+psycopg"):
        return
    raise ConfigError(f"{field}: '{driver}' is not supported; use {SUPPORTED_FORMS}")


def connect(url: str | None = None) -> Engine:
    """An engine on the control database as it is, schema unchecked: for :mod:`dc.schema` and its commands.

    Creates a SQLite file's directory if needed.
    """
    check_state_url(url or default_state_url(), "control_db" if url else f"${STATE_ENV}")
    url = url or default_state_url()
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            # WAL lets the scheduler, the CLI and scrapes read while a job writes.
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
    else:
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        engine = create_engine(url, pool_pre_ping=True)
    return engine


def open_state(url: str | None = None) -> Engine:
    """Connect to the control database, its schema at the migrations' head (:func:`dc.schema.require_head`).

    A new, empty database is created at the head; one that an older bcpctl left behind is
    refused until ``bcpctl db upgrade`` (or the start of ``bcpctl serve``) upgrades it.
    """
    engine = connect(url)
    try:
        schema.require_head(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine
