"""Operations on the index and its books: rebuild, re-index one page, remove a book, describe.

Each runs as an ingest job (see common/jobs/ingest_jobs.py) on a book's folder, by default the book
of the last update or full run; the API never opens Qdrant itself, so descriptions come from
the jobs' rows (common/book/books.py).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from celery import Celery
from sqlalchemy import select
from sqlalchemy.orm import Session

from common.book.books import get_book, known_books
from common.jobs.ingest_jobs import FOLDER_MODES, queue_ingest_job
from common.platform.errors import Conflict
from common.platform.models import IngestJob, JobStatus

# textbook__<embedder slug>-<dimension>__v<N>, as common/book/retrieval/store.py names versions.
_COLLECTION_NAME = re.compile(
    r"^(?P<alias>.+)__(?P<embedder>[a-z0-9-]+)-(?P<dimension>\d+)__v(?P<version>\d+)$"
)


class NoIndexYet(Conflict):
    code, title = "no_index", "No ingest has completed yet"


def last_folder_ingest(session: Session) -> IngestJob | None:
    """The most recent completed update or full run that wrote a collection: the index's source."""
    return session.scalar(
        select(IngestJob)
        .where(
            IngestJob.status == JobStatus.COMPLETED.value,
            IngestJob.mode.in_(FOLDER_MODES),
            IngestJob.collection.is_not(None),
        )
        .order_by(IngestJob.completed_at.desc(), IngestJob.id.desc())
        .limit(1)
    )


def _last_book(session: Session) -> tuple[str, str | None, str | None]:
    """The folder, book and URL base of the last completed folder run."""
    last = last_folder_ingest(session)
    if last is None:
        raise NoIndexYet("no ingest has completed yet: ingest a folder first")
    return last.path, last.book, last.base_url


def _folder_of(session: Session, book: str | None) -> tuple[str, str | None, str | None]:
    if book is None:
        return _last_book(session)
    found = get_book(session, book)
    return found.path, found.name, found.base_url


def queue_rebuild(
    session: Session,
    celery: Celery,
    path: str | None,
    *,
    book: str | None = None,
    allow_empty: bool = False,
    requested_by: uuid.UUID | None = None,
) -> IngestJob:
    """Queue a full run (a new collection, swapped in when complete) of one book.

    The book is `book`, else `path`'s, else the last ingested one; its folder is `path`, else
    the book's. Every other book is copied into the new collection.
    """
    base_url = None
    if path is None:
        path, book, base_url = _folder_of(session, book)
    return queue_ingest_job(
        session,
        celery,
        path,
        full=True,
        allow_empty=allow_empty,
        requested_by=requested_by,
        book=book,
        base_url=base_url,
    )


def queue_document_reindex(
    session: Session,
    celery: Celery,
    source: str,
    *,
    book: str | None = None,
    requested_by: uuid.UUID | None = None,
) -> IngestJob:
    """Queue re-embedding one page of a book (default: the last ingested one)."""
    folder, name, base_url = _folder_of(session, book)
    return queue_ingest_job(
        session,
        celery,
        folder,
        document=source,
        requested_by=requested_by,
        book=name,
        base_url=base_url,
    )


def queue_book_removal(
    session: Session, celery: Celery, name: str, *, requested_by: uuid.UUID | None = None
) -> IngestJob:
    """Queue deleting every point of one book (NotFound if there is no such book)."""
    book = get_book(session, name)
    return queue_ingest_job(
        session, celery, book.path, requested_by=requested_by, book=book.name, remove=True
    )


def index_state(session: Session, alias: str) -> dict[str, Any]:
    """The index as the last folder run left it (the API never opens Qdrant itself)."""
    last = last_folder_ingest(session)
    state: dict[str, Any] = {
        "object": "index",
        "alias": alias,
        "collection": None,
        "embedder": None,
        "dimension": None,
        "version": None,
        "documents": None,
        "folder": None,
        "last_ingest": None,
    }
    if last is None or last.collection is None:
        return state
    named = _COLLECTION_NAME.match(last.collection)
    state.update(
        collection=last.collection,
        documents=sum(book.pages or 0 for book in known_books(session).values()),
        folder=last.path,
        last_ingest={
            "id": last.id,
            "mode": last.mode,
            "completed_at": last.completed_at,
            "seconds": last.seconds,
        },
    )
    if named:
        state.update(
            embedder=named["embedder"],
            dimension=int(named["dimension"]),
            version=int(named["version"]),
        )
    return state
