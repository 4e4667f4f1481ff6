"""operator tools: audit log, reprocess jobs, ingest modes, attempt tracebacks

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target_kind", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.String(length=4096), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_at", ["at"], unique=False)
        batch_op.create_index("ix_audit_log_action", ["action"], unique=False)
    op.create_table(
        "reprocess_jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("operation", sa.String(length=32), nullable=False),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("requested_by", sa.Uuid(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("matched", sa.Integer(), nullable=False),
        sa.Column("requeued", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=255), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["requested_by"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("requested_by", "idempotency_key", name="uq_reprocess_idempotency"),
    )
    with op.batch_alter_table("reprocess_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_reprocess_jobs_status", ["status"], unique=False)
    with op.batch_alter_table("job_attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("traceback", sa.Text(), nullable=True))
    with op.batch_alter_table("ingest_jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("mode", sa.String(length=20), nullable=False, server_default="update")
        )
        batch_op.add_column(sa.Column("document", sa.String(length=4096), nullable=True))
        batch_op.add_column(
            sa.Column("allow_empty", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("chat_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_chat_jobs_created", ["created_at"], unique=False)
        batch_op.add_column(sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("chat_jobs", schema=None) as batch_op:
        batch_op.drop_column("queued_at")
        batch_op.drop_index("ix_chat_jobs_created")
    with op.batch_alter_table("ingest_jobs", schema=None) as batch_op:
        for column in ("allow_empty", "document", "mode"):
            batch_op.drop_column(column)
    with op.batch_alter_table("job_attempts", schema=None) as batch_op:
        batch_op.drop_column("traceback")
    op.drop_table("reprocess_jobs")
    op.drop_table("audit_log")
