"""The books (sources) of the index: list them, and remove one on purpose.

A book is removed only here or by `bookchat admin remove-book`: an ingest of one folder never
deletes another book's pages. The removal is an ingest job (`mode: remove`), audited as
`book.remove`, and waits for any other job of that book to end.
"""

from __future__ import annotations

from flask import Response, jsonify
from flask_openapi3.types import ResponseDict

from common.admin.index_operations import queue_book_removal
from common.book.books import book_body, known_books
from common.book.schemas import BookList, BookPath
from common.jobs.schemas import IngestJobOut
from common.platform.after_commit import commit
from common.platform.api_types import Problem
from web.api.admin_index import accepted
from web.audit import audited
from web.resources import db, resources
from web.security import admin_blueprint, current_user_id

bp = admin_blueprint("admin_books", __name__)
_ERRORS: ResponseDict = {401: Problem, 403: Problem, 422: Problem, 503: Problem}


@bp.get("/books", responses={200: BookList, **_ERRORS})
def list_books() -> Response:
    """Every book: its folder, URL base, pages and last ingest, by name."""
    books = sorted(known_books(db()).values(), key=lambda book: book.name)
    return jsonify({"object": "list", "data": [book_body(book) for book in books]})


@bp.delete("/books/<name>", responses={202: IngestJobOut, 404: Problem, **_ERRORS})
def remove_book(path: BookPath) -> tuple[Response, int]:
    """Remove a book's pages from the index (202 and the job's Location; 404 if unknown)."""
    with audited("book.remove", "book", path.name) as note:
        job = queue_book_removal(
            db(), resources().celery, path.name, requested_by=current_user_id()
        )
        commit(db())  # inside the audit: a refused send is audited as failed
        note.detail.update(job_id=str(job.id), path=job.path)
    return accepted(job)
