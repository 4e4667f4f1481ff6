"""the answer cache: which job a cached answer was copied from

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("chat_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cached_from_job_id", sa.Uuid(), nullable=True))
        batch_op.create_index("ix_chat_jobs_cached_from", ["cached_from_job_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("chat_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_chat_jobs_cached_from")
        batch_op.drop_column("cached_from_job_id")
