"""``error_message`` beside ``error`` in ``drill_runs`` and ``backup_runs``: the line's template and parameters.

``error`` keeps the English line every reader and script knows; ``error_message`` holds the
same line as its catalog template and parameters (JSON, :mod:`dc.storedmessages`), so a
Japanese operator reads a past run's error in Japanese. Rows of earlier runs keep NULL and
read as stored. Downgrade drops the columns.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

TABLES = ("drill_runs", "backup_runs")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("error_message", sa.Text))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("error_message")
