"""`bookchat admin books` and `bookchat admin remove-book NAME`: the index's books from a shell.

The same functions as GET /v1/admin/books and DELETE /v1/admin/books/{name}; a removal is
audited as `book.remove` by `cli:<os user>`, and with --wait the command follows its job.
"""

from __future__ import annotations

import argparse
from typing import Any

from cli.admin_views import ago, table
from cli.client import require_worker
from cli.ingest import summary_line
from cli.operator import Operator
from cli.terminal import printable, safe_json
from common.admin.index_operations import queue_book_removal
from common.book.books import book_body, check_book_name, known_books
from common.jobs.ingest_jobs import wait_for_ingest_job
from common.jobs.queue import INGEST_QUEUE
from common.platform.after_commit import commit
from common.platform.db import session_scope
from common.platform.models import JobStatus
from web.serializers import ingest_job_body

WAIT_EXIT = 2  # --wait ran out of time


def books(op: Operator, args: argparse.Namespace) -> int:
    """Every book: name, pages, last ingest, folder."""
    with session_scope(op.sessions) as session:
        found = sorted(known_books(session).values(), key=lambda book: book.name)
        page = {"object": "list", "data": [book_body(book) for book in found]}
    print(safe_json(page) if args.json else books_table(page))
    return 0


def books_table(page: dict[str, Any]) -> str:
    """The books as a table."""
    rows = [
        [
            book["name"] + (" (removing)" if book["removing"] else ""),
            "-" if book["pages"] is None else str(book["pages"]),
            ago(book["last_ingest"]["completed_at"]) if book["last_ingest"] else "-",
            book["path"],
        ]
        for book in page["data"]
    ]
    return table(["BOOK", "PAGES", "INGESTED", "FOLDER"], rows) if rows else "no books yet"


def remove_book(op: Operator, args: argparse.Namespace) -> int:
    """Queue the removal of one book's pages from the index (audited); --wait follows it."""
    name = check_book_name(args.name)
    require_worker(op.redis(), INGEST_QUEUE)
    celery = op.celery()
    with op.audited("book.remove", "book", name) as action:
        job = queue_book_removal(action.session, celery, name)
        commit(action.session)  # inside the audit: a refused send is audited as failed
        action.detail.update(job_id=str(job.id), path=job.path)
        body = ingest_job_body(job)
    if not args.wait:
        text = f"removal of book {name} queued as ingest job {job.id}"
        print(safe_json(body) if args.json else printable(text))
        return 0
    finished = wait_for_ingest_job(op.sessions, job.id, args.timeout)
    if finished is None:
        print(f"removal of book {name} did not finish within {args.timeout:.0f}s")
        return WAIT_EXIT
    print(safe_json(ingest_job_body(finished)) if args.json else summary_line(finished))
    return 0 if finished.status == JobStatus.COMPLETED.value else 1
