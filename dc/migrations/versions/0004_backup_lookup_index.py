"""The metrics' lookup index on ``backup_runs`` is part of the schema.

The previous release created ``ix_backup_runs_system_ok_id`` at the first metrics scrape (or
with the table, when the process that created it had loaded the metrics), so some sites have
it and some do not; from here on every database has it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

NAME = "ix_backup_runs_system_ok_id"


def upgrade() -> None:
    if NAME not in {index["name"] for index in sa.inspect(op.get_bind()).get_indexes("backup_runs")}:
        op.create_index(NAME, "backup_runs", ["system", "ok", "id"])


def downgrade() -> None:
    op.drop_index(NAME, table_name="backup_runs")
