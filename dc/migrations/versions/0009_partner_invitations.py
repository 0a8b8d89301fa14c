"""Partners enrolled through the portal: ``partner_invitations``, one row per one-time invitation.

Only the token's SHA-256 is stored. The invited official's form (``form``, JSON) waits here
until the operator confirms the fingerprints read aloud (``confirmed_at``); only then is the
partner written to ``enrolled_partners``. A new table: nothing existing changes. Downgrade drops it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "partner_invitations",
        sa.Column("token_sha256", sa.String(64), primary_key=True),
        sa.Column("partner_id", sa.String(64), nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("form", sa.Text, nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("confirmed_by", sa.Text, nullable=True),
    )
    op.create_index("ix_partner_invitations_partner_id", "partner_invitations", ["partner_id"])


def downgrade() -> None:
    op.drop_index("ix_partner_invitations_partner_id", table_name="partner_invitations")
    op.drop_table("partner_invitations")
