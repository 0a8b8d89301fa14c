"""``replication_lag`` gains ``recovery_point_lag_seconds``: a postgres-wal system's offsite can
recover to its newest archived WAL, not only to its newest snapshot, so how far the offsite's
recovery point trails the primary's is measured apart from the snapshot lag. Existing rows get
none until the next replication measures it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("replication_lag", sa.Column("recovery_point_lag_seconds", sa.Float))


def downgrade() -> None:
    with op.batch_alter_table("replication_lag") as batch:
        batch.drop_column("recovery_point_lag_seconds")
