"""Drills started from the web are recorded in ``drill_runs`` like every other run; ``web_jobs`` goes.

``drill_runs`` is the one record of a drill, wherever it was started: the web now records its
run there before the drill begins. The run gains ``tenant`` (the one tenant a drill was
limited to), which the web's job list carried. Each row of ``web_jobs`` moves as follows:

* a job whose drill ran has its run in ``drill_runs`` already (``web_jobs.run_id``); the run
  takes the job's tenant and, as its operator, the web account that asked for it (the run
  had recorded the system user the web server runs as);
* a job without a run was refused or failed before its drill began, so it never was a run;
  the audit chain keeps it whole (``drill.requested`` and ``drill.finished`` name who asked,
  when, the mode, the tenant and the error), and nothing else refers to it.

The downgrade gives the previous release an empty ``web_jobs`` (its dashboard then lists no
jobs; every run stays in ``drill_runs``) and drops ``drill_runs.tenant``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

#: ``drill_runs.operator``'s width; web account names are at most 64 characters
OPERATOR_WIDTH = 64


def upgrade() -> None:
    op.add_column("drill_runs", sa.Column("tenant", sa.String(64)))
    bind = op.get_bind()
    jobs = sa.table("web_jobs", sa.column("run_id"), sa.column("tenant"), sa.column("requested_by"))
    runs = sa.table("drill_runs", sa.column("id"), sa.column("tenant"), sa.column("operator"))
    moved = bind.execute(
        sa.select(jobs.c.run_id, jobs.c.tenant, jobs.c.requested_by).where(jobs.c.run_id.is_not(None))
    ).all()
    for run_id, tenant, requested_by in moved:
        bind.execute(
            sa.update(runs).where(runs.c.id == run_id).values(tenant=tenant, operator=requested_by[:OPERATOR_WIDTH])
        )
    op.drop_table("web_jobs")


def downgrade() -> None:
    # As migration 0002 left it: 0002's downgrade turns its times back into text.
    op.create_table(
        "web_jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("mode", sa.String(24), nullable=False),
        sa.Column("tenant", sa.String(64)),
        sa.Column("requested_by", sa.Text, nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("run_id", sa.String(48)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("error", sa.Text),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
    )
    with op.batch_alter_table("drill_runs") as batch:
        batch.drop_column("tenant")
