"""accounts: guest/user/admin roles, external identities, reader profiles, chapter jobs

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column("email", existing_type=sa.String(length=320), nullable=True)
        batch_op.alter_column("password_hash", existing_type=sa.String(length=255), nullable=True)
        batch_op.add_column(
            sa.Column("auth_provider", sa.String(length=32), nullable=False, server_default="local")
        )
        batch_op.add_column(sa.Column("external_id", sa.String(length=255), nullable=True))
        batch_op.create_unique_constraint(
            "uq_users_external_identity", ["auth_provider", "external_id"]
        )
    op.execute("UPDATE users SET role = 'user' WHERE role = 'reader'")
    op.create_table(
        "reader_profiles",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("software_level", sa.String(length=20), nullable=True),
        sa.Column("programming_languages", sa.JSON(), nullable=False),
        sa.Column("robotics_experience", sa.String(length=20), nullable=True),
        sa.Column("hardware", sa.JSON(), nullable=False),
        sa.Column("learning_goal", sa.String(length=500), nullable=True),
        sa.Column("preferred_language", sa.String(length=8), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id"),
    )
    with op.batch_alter_table("chat_jobs", schema=None) as batch_op:
        batch_op.alter_column("conversation_id", existing_type=sa.Uuid(), nullable=True)
        batch_op.add_column(
            sa.Column("task", sa.String(length=20), nullable=False, server_default="chat")
        )
        batch_op.add_column(sa.Column("profile_applied", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("language", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("cache_key", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_chat_jobs_cache_key", ["cache_key"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("chat_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_chat_jobs_cache_key")
        batch_op.drop_column("cache_key")
        batch_op.drop_column("language")
        batch_op.drop_column("profile_applied")
        batch_op.drop_column("task")
    op.execute("DELETE FROM chat_jobs WHERE conversation_id IS NULL")
    with op.batch_alter_table("chat_jobs", schema=None) as batch_op:
        batch_op.alter_column("conversation_id", existing_type=sa.Uuid(), nullable=False)
    op.drop_table("reader_profiles")
    op.execute("UPDATE users SET role = 'reader' WHERE role = 'user'")
    op.execute("DELETE FROM users WHERE email IS NULL")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint("uq_users_external_identity", type_="unique")
        batch_op.drop_column("external_id")
        batch_op.drop_column("auth_provider")
        batch_op.alter_column("password_hash", existing_type=sa.String(length=255), nullable=False)
        batch_op.alter_column("email", existing_type=sa.String(length=320), nullable=False)
