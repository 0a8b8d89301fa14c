"""The control database's Alembic migrations, applied by :mod:`dc.schema` (never with an alembic.ini).

``versions/NNNN_name.py``, numbered in order: ``revision`` is the file's number and
``down_revision`` the one before. A migration is written by hand and imports nothing from
bcpctl's table modules, so it keeps creating the same schema whatever those modules become;
``tests/dc/test_migrations.py`` fails, listing the differences, as long as the tables
declared on :data:`dc.state.metadata` and the newest migration disagree.
"""
