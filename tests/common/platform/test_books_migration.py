"""Migration 0008 names the books of ingest jobs made before books existed (SQLite)."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

from common.platform.migrate import upgrade_database
from tests.support.stack import make_settings


def test_earlier_jobs_get_their_folders_books(tmp_path: Path, redis_url: str) -> None:
    settings = make_settings(tmp_path, redis_url)
    upgrade_database(settings, "0007")
    engine = create_engine(settings.sqlalchemy_url)
    paths = ["/srv/a/docs", "/srv/b/docs", "/srv/a/docs/", "/srv/sample"]
    with engine.begin() as connection:
        for n, path in enumerate(paths):
            connection.execute(
                text(
                    "INSERT INTO ingest_jobs (id, path, full, mode, allow_empty, files_total, "
                    "files_seen, files_changed, files_skipped, files_deleted, files_failed, "
                    "chunks_written, embeddings_computed, failures, status, attempts, created_at) "
                    "VALUES (:id, :path, 0, 'update', 0, 0, 0, 0, 0, 0, 0, 0, 0, '[]', "
                    "'completed', 1, :at)"
                ),
                {"id": uuid.uuid4().hex, "path": path, "at": f"2024-01-01 00:00:0{n}"},
            )

    upgrade_database(settings)

    with engine.connect() as connection:
        rows = connection.execute(text("SELECT path, book FROM ingest_jobs ORDER BY created_at"))
        assert [tuple(row) for row in rows] == [
            ("/srv/a/docs", "docs"),
            ("/srv/b/docs", "docs-2"),
            ("/srv/a/docs/", "docs"),
            ("/srv/sample", "sample"),
        ]
    engine.dispose()
