"""books: each ingest job names the book (source) it touches, and that book's base URL

Rows made before books existed are named as common/book/books.py names a folder's book: its last
part as a slug, `-2`, `-3`... when another folder already holds that slug (oldest first).

Revision ID: 0008
Revises: 0007
"""

import os
import re
from collections.abc import Sequence
from pathlib import PurePosixPath

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _slug(path: str) -> str:
    # A copy of common.book.books.book_slug as it was here: a migration must not change later.
    name = PurePosixPath(os.path.normpath(path.replace("\\", "/"))).name
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:64].strip("-")
    return slug or "book"


def upgrade() -> None:
    with op.batch_alter_table("ingest_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("book", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("base_url", sa.String(length=2048), nullable=True))
        batch_op.create_index("ix_ingest_jobs_book", ["book", "status"], unique=False)
    bind = op.get_bind()
    # Raw SQL both ways, so each id goes back exactly as the driver gave it.
    rows = bind.execute(sa.text("SELECT id, path FROM ingest_jobs ORDER BY created_at, id"))
    names: dict[str, str] = {}  # normalized path -> book
    for job_id, path in rows.fetchall():
        folder = os.path.normpath(path)
        if folder not in names:
            base, n = _slug(path), 2
            name = base
            while name in names.values():
                suffix = f"-{n}"
                name, n = base[: 64 - len(suffix)] + suffix, n + 1
            names[folder] = name
        bind.execute(
            sa.text("UPDATE ingest_jobs SET book = :book WHERE id = :id"),
            {"book": names[folder], "id": job_id},
        )


def downgrade() -> None:
    with op.batch_alter_table("ingest_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_ingest_jobs_book")
        batch_op.drop_column("base_url")
        batch_op.drop_column("book")
