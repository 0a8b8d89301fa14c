"""Alembic's environment: migrations run on the connection :mod:`dc.schema` holds, inside its transaction.

The caller has already serialised the upgrade (an advisory lock on PostgreSQL, ``BEGIN
IMMEDIATE`` on SQLite) and commits it, so every migration of one upgrade lands together or not
at all. There is no offline (SQL script) mode: the data migrations read and rewrite rows.
"""

from __future__ import annotations

from alembic import context

from dc.errors import UsageError

if context.is_offline_mode():
    raise UsageError("the control database's migrations run against the database itself (bcpctl db upgrade)")

context.configure(connection=context.config.attributes["connection"])
with context.begin_transaction():
    context.run_migrations()
