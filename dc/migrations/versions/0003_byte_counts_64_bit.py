"""Byte counts are 64-bit: a backup or a read-data check of more than 2 GiB is recorded on PostgreSQL too.

``backup_runs.bytes_in``, ``backup_runs.bytes_added`` and ``repository_checks.bytes_read``
were INTEGER, 32-bit on PostgreSQL, so recording a larger run failed there ("integer out of
range"); SQLite's INTEGER always held 64 bits. Values are kept as they are.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

#: table -> (column, nullable)
COLUMNS = {
    "backup_runs": (("bytes_in", True), ("bytes_added", True)),
    "repository_checks": (("bytes_read", False),),
}


def upgrade() -> None:
    _change(sa.Integer(), sa.BigInteger())


def downgrade() -> None:
    _change(sa.BigInteger(), sa.Integer())


def _change(old: sa.types.TypeEngine[int], new: sa.types.TypeEngine[int]) -> None:
    # Both types have integer affinity on SQLite: its copy of the table keeps every value.
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for name, nullable in columns:
                batch.alter_column(name, type_=new, existing_type=old, existing_nullable=nullable)
