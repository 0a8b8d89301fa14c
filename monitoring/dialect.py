"""The few statements that differ between the control database's two engines.

PostgreSQL aborts the whole transaction on a failed INSERT while SQLite aborts only the
statement, so "insert unless present" is written as ``ON CONFLICT DO NOTHING`` (both
dialects support it, SQLite since 3.24, RETURNING since 3.35) and never as try-INSERT-catch-IntegrityError.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any

from sqlalchemy import Connection, Engine, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from dc.state import ensure_tables


def is_postgres(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "postgresql"


def insert_ignore(conn: Connection, table: Table, **values: Any) -> bool:
    """Insert a row unless its primary key exists; ``True`` if this call inserted it."""
    module = postgresql if is_postgres(conn) else sqlite
    key = next(iter(table.primary_key.columns))
    # rowcount of INSERT is not reliable across drivers (psycopg reports -1): ask for the row.
    statement = module.insert(table).values(**values).on_conflict_do_nothing().returning(key)
    return conn.execute(statement).first() is not None


_ensured: weakref.WeakKeyDictionary[Engine, set[str]] = weakref.WeakKeyDictionary()
_ensured_lock = threading.Lock()


def ensure(engine: Engine, *tables: Table) -> None:
    """``dc.state.ensure_tables``, once per engine, and safe when two processes start together.

    ``CREATE TABLE`` after a "does it exist?" check races when a leader and a standby start at
    the same moment; the loser's error is harmless, so it checks again instead of failing.
    """
    with _ensured_lock:
        done = _ensured.setdefault(engine, set())
        missing = [table for table in tables if table.name not in done]
    if not missing:
        return
    for attempt in range(5):
        try:
            ensure_tables(engine, *missing)
            break
        except DBAPIError as exc:
            if attempt == 4 or not lost_create_race(exc):
                raise
            time.sleep(0.1 * (attempt + 1))
    with _ensured_lock:
        done.update(table.name for table in missing)


def lost_create_race(exc: DBAPIError) -> bool:
    """Another process created the same table or index first (SQLite: "already exists";
    PostgreSQL: "already exists" or a duplicate row in its catalogue), as opposed to an
    unreachable database, which must fail at once."""
    text = str(exc.orig).lower()
    return "already exists" in text or "duplicate key" in text
