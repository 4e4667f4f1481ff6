"""chat answers: uncited sources apart from citations, and why an answer is incomplete

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Statuses are plain strings (no CHECK constraint): `incomplete` needs no schema change.
    with op.batch_alter_table("chat_jobs", schema=None) as batch_op:
        # Older rows listed every retrieved passage in `citations`; they keep it, sources empty.
        batch_op.add_column(sa.Column("sources", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("incomplete_reason", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("chat_jobs", schema=None) as batch_op:
        batch_op.drop_column("incomplete_reason")
        batch_op.drop_column("sources")
