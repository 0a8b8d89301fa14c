"""Continuous protection: the recovery point lag and the ransomware signals of each backup.

``replication_lag`` gains ``recovery_point_lag_seconds``: a postgres-wal system's offsite can
recover to its newest archived WAL, not only to its newest snapshot, so how far the offsite's
recovery point trails the primary's is measured apart from the snapshot lag. Existing rows get
none until the next replication measures it.

``backup_runs`` gains the signals of the data each backup added (compressibility, the share
of new data and of changed files), the anomaly they showed, and the snapshot before an
anomalous backup (the last known good). Earlier runs have none: thresholds are learned from
runs that carry them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


_SIGNALS = ("compressibility", "new_fraction", "changed_fraction")


def upgrade() -> None:
    op.add_column("replication_lag", sa.Column("recovery_point_lag_seconds", sa.Float))
    for name in _SIGNALS:
        op.add_column("backup_runs", sa.Column(name, sa.Float))
    op.add_column("backup_runs", sa.Column("anomaly", sa.Text))
    op.add_column("backup_runs", sa.Column("last_known_good", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("replication_lag") as batch:
        batch.drop_column("recovery_point_lag_seconds")
    with op.batch_alter_table("backup_runs") as batch:
        for name in (*_SIGNALS, "anomaly", "last_known_good"):
            batch.drop_column(name)
