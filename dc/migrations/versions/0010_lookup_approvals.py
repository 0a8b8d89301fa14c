"""Lookups that wait for one approver of the home town: ``lookup_approvals``, one row per waiting lookup.

Only an HMAC of the question is kept (under a nonce that only the partner's one-time code
carries), never the name asked for. A new table: nothing existing changes. Downgrade drops it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lookup_approvals",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("partner", sa.String(64), nullable=False),
        sa.Column("official", sa.Text, nullable=False),
        sa.Column("disaster", sa.Text, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_by", sa.Text, nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_lookup_approvals_tenant", "lookup_approvals", ["tenant"])


def downgrade() -> None:
    op.drop_index("ix_lookup_approvals_tenant", table_name="lookup_approvals")
    op.drop_table("lookup_approvals")
