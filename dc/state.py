"""The control-state database: what bcpctl did and when (runs, results, leases).

SQLite by default, PostgreSQL when the consortium runs the controller redundantly. Each
package declares its own tables on :data:`metadata` in its own module and calls
:func:`ensure_tables` before first use, so this bottom layer never imports the layers above.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
)
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from dc.errors import ConfigError

metadata = MetaData()

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
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("ok", Boolean, nullable=False, default=False),
    Column("bytes_in", Integer, default=0),
    Column("bytes_added", Integer, default=0),
    Column("seconds", Float, default=0.0),
    Column("error", Text),
)


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


def open_state(url: str | None = None) -> Engine:
    """Connect to the control database, creating a SQLite file's directory if needed."""
    check_state_url(url or default_state_url(), "control_db" if url else f"${STATE_ENV}")
    url = url or default_state_url()
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            # WAL lets the scheduler, the CLI and scrapes read while a job writes.
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
    else:
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        engine = create_engine(url, pool_pre_ping=True)
    ensure_tables(engine, backup_runs)
    return engine


def ensure_tables(engine: Engine, *tables: Table) -> None:
    """Create the given tables if they do not exist yet (idempotent, safe to call per run).

    Two processes starting together both see a table missing and both create it; the loser's
    CREATE fails. Retrying the check settles it: by then the table exists.
    """
    for attempt in range(3):
        try:
            metadata.create_all(engine, tables=list(tables), checkfirst=True)
            return
        except (OperationalError, ProgrammingError, IntegrityError):
            if attempt == 2:
                raise
            time.sleep(0.05 * (attempt + 1))
