"""One file per migration, loaded by Alembic by path (see :mod:`dc.migrations`)."""
