"""``backup_runs.type_lost_fraction``: the content-type ransomware signal of each backup.

The share of changed files whose known content type (PDF, xlsx, text…) became none, as in-place
encryption leaves them (backup/contenttype.py, backup/anomaly.py). A nullable column: rows of
earlier backups keep NULL (no basis), which the threshold learning skips. Downgrade drops it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("backup_runs", sa.Column("type_lost_fraction", sa.Float))


def downgrade() -> None:
    with op.batch_alter_table("backup_runs") as batch:
        batch.drop_column("type_lost_fraction")
