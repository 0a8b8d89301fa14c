"""The few statements that differ between the control database's two engines.

PostgreSQL aborts the whole transaction on a failed INSERT while SQLite aborts only the
statement, so "insert unless present" is written as ``ON CONFLICT DO NOTHING`` (both
dialects support it, SQLite since 3.24, RETURNING since 3.35) and never as try-INSERT-catch-IntegrityError.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, Table
from sqlalchemy.dialects import postgresql, sqlite


def is_postgres(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "postgresql"


def insert_ignore(conn: Connection, table: Table, **values: Any) -> bool:
    """Insert a row unless its primary key exists; ``True`` if this call inserted it."""
    module = postgresql if is_postgres(conn) else sqlite
    key = next(iter(table.primary_key.columns))
    # rowcount of INSERT is not reliable across drivers (psycopg reports -1): ask for the row.
    statement = module.insert(table).values(**values).on_conflict_do_nothing().returning(key)
    return conn.execute(statement).first() is not None
