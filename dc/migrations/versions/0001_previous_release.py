"""The schema of the release before migrations (commit 7fbf416), as deployed sites have it.

That release created each table on first use, so a deployed database holds only the tables
its site has used, without a version table. This migration therefore creates whichever of
the release's tables are missing and leaves the present ones alone; :func:`dc.schema.upgrade`
first checks that every present table is the release's (same columns), then this migration
records the database at revision 0001. On a new database it creates them all.

The declarations are those of that release, frozen here: the modules that declare today's
tables change, this must not.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def declare(metadata: sa.MetaData) -> None:
    """The release's tables on ``metadata``, column for column (types, keys, indexes, constraints)."""
    tz = sa.DateTime(timezone=True)
    sa.Table(
        "audit_log",
        metadata,
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
    )
    sa.Table(
        "backup_runs",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("system", sa.String(64), index=True),
        sa.Column("tenant", sa.String(64)),
        sa.Column("repository", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("snapshot_id", sa.String(64)),
        sa.Column("started_at", tz, nullable=False),
        sa.Column("finished_at", tz),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("bytes_in", sa.Integer),
        sa.Column("bytes_added", sa.Integer),
        sa.Column("seconds", sa.Float),
        sa.Column("error", sa.Text),
    )
    sa.Table(
        "drill_resources",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(48), nullable=False, index=True),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", tz, nullable=False),
        sa.Column("removed_at", tz),
        sa.Column("detail", sa.Text),
    )
    sa.Table(
        "drill_runs",
        metadata,
        sa.Column("id", sa.String(48), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False, index=True),
        sa.Column("mode", sa.String(24), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("consortium", sa.String(64), nullable=False),
        sa.Column("site", sa.String(64)),
        sa.Column("target_site", sa.String(64)),
        sa.Column("declared_at", tz, nullable=False),
        sa.Column("deadline", tz),
        sa.Column("finished_at", tz),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("pid_start", sa.String(32)),
        sa.Column("operator", sa.String(64)),
        sa.Column("approver", sa.String(64)),
        sa.Column("error", sa.Text),
        sa.Column("document", sa.Text),
    )
    sa.Table(
        "drill_systems",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(48), nullable=False, index=True),
        sa.Column("system", sa.String(64), nullable=False, index=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("snapshot_id", sa.String(64)),
        sa.Column("snapshot_time", tz),
        sa.Column("rto_seconds", sa.Float),
        sa.Column("rpo_seconds", sa.Float),
        sa.Column("rto_target", sa.Integer),
        sa.Column("rpo_target", sa.Integer),
        sa.Column("finished_at", tz, nullable=False),
    )
    sa.Table(
        "export_decisions",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(40), nullable=False, index=True),
        sa.Column("approver", sa.Text, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.UniqueConstraint("request_id", "approver"),
    )
    sa.Table(
        "export_requests",
        metadata,
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False, index=True),
        sa.Column("partner", sa.String(64), nullable=False),
        sa.Column("disaster_id", sa.Text, nullable=False),
        sa.Column("disaster_date", sa.String(10), nullable=False),
        sa.Column("basis", sa.String(32), nullable=False),
        sa.Column("purposes", sa.Text, nullable=False),
        sa.Column("requested_fields", sa.Text, nullable=False),
        sa.Column("fields", sa.Text, nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("retention_days", sa.Integer, nullable=False),
        sa.Column("formats", sa.Text, nullable=False),
        sa.Column("requested_by", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("valid_until", sa.String(40), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("builds", sa.Integer, nullable=False),
    )
    sa.Table(
        "health_observations",
        metadata,
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("subject", sa.String(200), primary_key=True),
        sa.Column("site", sa.String(64)),
        sa.Column("tenant", sa.String(64)),
        sa.Column("probe", sa.String(32)),
        sa.Column("ok", sa.Boolean),
        sa.Column("value", sa.Float),
        sa.Column("value2", sa.Float),
        sa.Column("detail", sa.Text),
        sa.Column("checked_at", tz, nullable=False),
    )
    sa.Table(
        "host_maintenance",
        metadata,
        sa.Column("host", sa.String(64), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("since", tz, nullable=False),
        sa.Column("operator", sa.String(64), nullable=False),
    )
    sa.Table(
        "maintenance_events",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("host", sa.String(64), nullable=False, index=True),
        sa.Column("on", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("at", tz, nullable=False),
        sa.Column("operator", sa.String(64), nullable=False),
    )
    sa.Table(
        "playbook_hosts",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(96), nullable=False, index=True),
        sa.Column("host", sa.String(64), nullable=False, index=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("ok", sa.Integer, nullable=False),
        sa.Column("changed", sa.Integer, nullable=False),
        sa.Column("failed", sa.Integer, nullable=False),
        sa.Column("unreachable", sa.Integer, nullable=False),
        sa.Column("skipped", sa.Integer, nullable=False),
        sa.Column("rescued", sa.Integer, nullable=False),
        sa.Column("ignored", sa.Integer, nullable=False),
        sa.Column("message", sa.Text),
        sa.Column("data", sa.Text),
    )
    sa.Table(
        "playbook_runs",
        metadata,
        sa.Column("run_id", sa.String(96), primary_key=True),
        sa.Column("playbook", sa.String(64), nullable=False, index=True),
        sa.Column("limit_pattern", sa.Text),
        sa.Column("check_mode", sa.Boolean, nullable=False),
        sa.Column("extravar_names", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("rc", sa.Integer),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("started_at", tz, nullable=False),
        sa.Column("finished_at", tz, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("error", sa.Text),
    )
    sa.Table(
        "replication_lag",
        metadata,
        sa.Column("target", sa.String(512), primary_key=True),
        sa.Column("system", sa.String(64), primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("source_newest", tz),
        sa.Column("target_newest", tz),
        sa.Column("lag_seconds", sa.Float),
        sa.Column("measured_at", tz, nullable=False),
    )
    sa.Table(
        "replication_locks",
        metadata,
        sa.Column("target", sa.String(512), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("retain_until", tz, nullable=False),
    )
    sa.Table(
        "replication_pending_deletes",
        metadata,
        sa.Column("target", sa.String(512), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("first_missing_at", tz, nullable=False),
    )
    sa.Table(
        "replication_pins",
        metadata,
        sa.Column("repository", sa.String(64), primary_key=True),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("sequence", sa.BigInteger, nullable=False),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("updated_at", tz, nullable=False),
    )
    sa.Table(
        "replication_runs",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("started_at", tz, nullable=False),
        sa.Column("finished_at", tz, nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("objects_copied", sa.Integer, nullable=False),
        sa.Column("bytes_sent", sa.BigInteger, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("manifest_sequence", sa.BigInteger),
        sa.Column("error", sa.Text),
    )
    sa.Table(
        "repository_checks",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("site", sa.String(64), nullable=False, index=True),
        sa.Column("started_at", tz, nullable=False),
        sa.Column("finished_at", tz, nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("read_data", sa.Boolean, nullable=False),
        sa.Column("subset_n", sa.Integer),
        sa.Column("subset_m", sa.Integer),
        sa.Column("snapshots", sa.Integer, nullable=False),
        sa.Column("packs", sa.Integer, nullable=False),
        sa.Column("packs_read", sa.Integer, nullable=False),
        sa.Column("bytes_read", sa.Integer, nullable=False),
        sa.Column("problems", sa.Integer, nullable=False),
        sa.Column("detail", sa.Text),
    )
    sa.Table(
        "resource_usage",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(64), nullable=False, index=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("amount", sa.Float, nullable=False),
        sa.Column("at", tz, nullable=False, index=True),
        sa.Column("ref", sa.Text),
    )
    sa.Table(
        "scheduler_job_claims",
        metadata,
        sa.Column("job_id", sa.String(200), primary_key=True),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("claimed_at", tz, nullable=False),
        sa.Column("heartbeat_at", tz, nullable=False),
    )
    sa.Table(
        "scheduler_job_runs",
        metadata,
        sa.Column("run_id", sa.String(36), primary_key=True),
        sa.Column("job_id", sa.String(200), nullable=False, index=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("started_at", tz, nullable=False),
        sa.Column("finished_at", tz),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text),
    )
    sa.Table(
        "scheduler_job_stats",
        metadata,
        sa.Column("job_id", sa.String(200), primary_key=True),
        sa.Column("runs", sa.Integer, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("missed", sa.Integer, nullable=False),
        sa.Column("consecutive_failures", sa.Integer, nullable=False),
        sa.Column("last_success_at", tz),
        sa.Column("last_finished_at", tz),
        sa.Column("last_seconds", sa.Float),
    )
    sa.Table(
        "scheduler_lease",
        metadata,
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("acquired_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    sa.Table(
        "scheduler_terms",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("started_at", tz, nullable=False),
        sa.Column("ended_at", tz),
        sa.Column("end_reason", sa.String(64)),
    )
    sa.Table(
        "web_accounts",
        metadata,
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("roles", sa.Text, nullable=False),
        sa.Column("password_hash", sa.Text),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
    )
    sa.Table(
        "web_deliveries",
        metadata,
        sa.Column("request_id", sa.String(40), primary_key=True),
        sa.Column("partner", sa.String(64), nullable=False),
        sa.Column("bundle", sa.Text, nullable=False),
        sa.Column("payload_sha256", sa.String(64), nullable=False),
        sa.Column("built_at", sa.String(40), nullable=False),
        sa.Column("expires_at", sa.String(40), nullable=False),
        sa.Column("downloads", sa.Integer, nullable=False),
        sa.Column("last_download_at", sa.String(40)),
        sa.Column("deleted_at", sa.String(40)),
        sa.Column("deleted_by", sa.Text),
    )
    sa.Table(
        "web_jobs",
        metadata,
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("mode", sa.String(24), nullable=False),
        sa.Column("tenant", sa.String(64)),
        sa.Column("requested_by", sa.Text, nullable=False),
        sa.Column("requested_at", sa.String(40), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("run_id", sa.String(48)),
        sa.Column("finished_at", sa.String(40)),
        sa.Column("error", sa.Text),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
    )
    sa.Table(
        "web_partner_tokens",
        metadata,
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("partner", sa.String(64), nullable=False, index=True),
        sa.Column("digest", sa.String(64), nullable=False, unique=True),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("issued_by", sa.Text, nullable=False),
        sa.Column("issued_at", sa.String(40), nullable=False),
        sa.Column("expires_at", sa.String(40), nullable=False),
        sa.Column("revoked_at", sa.String(40)),
    )
    sa.Table(
        "web_request_nonces",
        metadata,
        sa.Column("partner", sa.String(64), primary_key=True),
        sa.Column("nonce", sa.String(64), primary_key=True),
        sa.Column("seen_at", sa.String(40), nullable=False, index=True),
    )
    sa.Table(
        "web_sessions",
        metadata,
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("expires_at", sa.String(40), nullable=False),
    )


def upgrade() -> None:
    release = sa.MetaData()
    declare(release)
    release.create_all(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    release = sa.MetaData()
    declare(release)
    release.drop_all(op.get_bind(), checkfirst=True)
