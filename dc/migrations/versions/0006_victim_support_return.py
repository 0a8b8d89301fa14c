"""Export requests carry what the check against the replica found at filing, and a stated 台帳 waiver;
lookups of one evacuee and the home towns' notices of protected residents looked up.

``export_requests.estimate`` (JSON, ``NULL`` for requests filed before this check: they can be
listed, never approved) and ``export_requests.ledger_waiver`` (why the request needs no
被災者台帳 entry of its disaster; empty when not stated). New tables ``lookups`` (one row per
lookup that passed its checks: the per-hour limits count them), ``lookup_notices`` and
``evacuee_notes`` (the PFIF notes partners return; every one kept) and ``enrolled_partners``
(partners registered on the day, and removed ones).
Downgrade drops all of it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("export_requests") as batch:
        batch.add_column(sa.Column("ledger_waiver", sa.Text, nullable=False, server_default=""))
        batch.add_column(sa.Column("estimate", sa.Text, nullable=True))
    op.create_table(
        "lookups",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("partner", sa.String(64), nullable=False),
        sa.Column("official", sa.Text, nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("candidates", sa.Integer, nullable=False),
    )
    op.create_index("ix_lookups_partner", "lookups", ["partner"])
    op.create_index("ix_lookups_at", "lookups", ["at"])
    op.create_table(
        "lookup_notices",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lookup_id", sa.String(40), nullable=False),
        sa.Column("partner", sa.String(64), nullable=False),
        sa.Column("official", sa.Text, nullable=False),
        sa.Column("resident_ref", sa.String(64), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_lookup_notices_tenant", "lookup_notices", ["tenant"])
    op.create_table(
        "evacuee_notes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("partner", sa.String(64), nullable=False),
        sa.Column("person_ref", sa.String(64), nullable=False),
        sa.Column("note_record_id", sa.Text, nullable=False),
        sa.Column("author_name", sa.Text, nullable=False),
        sa.Column("source_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("entry_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("author_made_contact", sa.Boolean, nullable=True),
        sa.Column("last_known_location", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.UniqueConstraint("partner", "note_record_id"),
    )
    op.create_index("ix_evacuee_notes_tenant", "evacuee_notes", ["tenant"])
    op.create_table(
        "enrolled_partners",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("lg_code", sa.String(6), nullable=False),
        sa.Column("age_recipient", sa.Text, nullable=False),
        sa.Column("verify_key", sa.Text, nullable=True),
        sa.Column("officials", sa.Text, nullable=False),
        sa.Column("enrolled_by", sa.Text, nullable=False),
        sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removed_by", sa.Text, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("enrolled_partners")
    op.drop_table("evacuee_notes")
    op.drop_table("lookup_notices")
    op.drop_table("lookups")
    with op.batch_alter_table("export_requests") as batch:
        batch.drop_column("estimate")
        batch.drop_column("ledger_waiver")
