"""Export requests carry what the check against the replica found at filing, and a stated 台帳 waiver.

``export_requests.estimate`` (JSON, ``NULL`` for requests filed before this check: they can be
listed, never approved) and ``export_requests.ledger_waiver`` (why the request needs no
被災者台帳 entry of its disaster; empty when not stated). Downgrade drops both.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("export_requests") as batch:
        batch.add_column(sa.Column("ledger_waiver", sa.Text, nullable=False, server_default=""))
        batch.add_column(sa.Column("estimate", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("export_requests") as batch:
        batch.drop_column("estimate")
        batch.drop_column("ledger_waiver")
