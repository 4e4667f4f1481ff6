"""Books: each ingested folder is a source of its own, named, listed and removed on its own.

A book's name is given by the admin (`book`) or derived from its folder: the folder's last
part as a slug (`/srv/robotics/docs` -> `docs`); a folder already known keeps its book, and a
new folder whose slug another folder holds gets `docs-2`, `docs-3`, ... so one book's ingest
never replaces another's. The ingest_jobs rows are the record: a book exists from its first
update or full job that did not fail until a removal of it completes. Points in the index
carry the book's name (common/book/retrieval/store.py); the API never opens Qdrant, so listings
come from the rows.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.book.schemas import BookOut
from common.platform.errors import InvalidInput, NotFound
from common.platform.models import IngestJob, JobStatus

# The book of the default TEXTBOOK_PATH (examples/textbook), and of library calls naming none.
DEFAULT_BOOK = "textbook"
BOOK_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
BOOK_NAME_RULE = "1-64 lowercase letters, digits and dashes, starting with a letter or digit"
# Job modes that say what a book is (a folder run) or that it is gone (a removal).
FOLDER_RUNS = ("update", "full")
REMOVAL = "remove"
_ENDED_BADLY = (JobStatus.FAILED.value, JobStatus.CANCELLED.value)


@dataclass
class Book:
    """One book as the ingest_jobs rows describe it."""

    name: str
    path: str
    base_url: str | None = None
    last_ingest: IngestJob | None = None  # the last completed update or full run
    removing: bool = False  # a removal of it is queued or running

    @property
    def pages(self) -> int | None:
        """Pages the last completed folder run indexed or kept."""
        last = self.last_ingest
        return None if last is None else last.files_changed + last.files_skipped


def book_slug(path: str) -> str:
    """The name a folder's book gets by default: its last part, as a slug."""
    name = PurePosixPath(os.path.normpath(path.replace("\\", "/"))).name
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:64].strip("-")
    return slug or "book"


def check_book_name(name: str) -> str:
    """The name, if it is a valid book name; else InvalidInput."""
    if not BOOK_NAME.match(name):
        raise InvalidInput(f"a book name is {BOOK_NAME_RULE}: {name!r}")
    return name


def known_books(session: Session) -> dict[str, Book]:
    """Every book that exists (or is being created), by name, from the ingest_jobs rows."""
    rows = session.scalars(
        select(IngestJob)
        .where(IngestJob.book.is_not(None), IngestJob.mode.in_((*FOLDER_RUNS, REMOVAL)))
        .order_by(IngestJob.created_at, IngestJob.id)
    )
    books: dict[str, Book] = {}
    for row in rows:
        name = str(row.book)
        if row.mode == REMOVAL:
            if row.status == JobStatus.COMPLETED.value:
                books.pop(name, None)
            elif row.status not in _ENDED_BADLY and name in books:
                books[name].removing = True
            continue
        if row.status in _ENDED_BADLY:
            continue
        book = books.setdefault(name, Book(name, row.path))
        book.path, book.base_url, book.removing = row.path, row.base_url, False
        if row.status == JobStatus.COMPLETED.value:
            book.last_ingest = row
    return books


def get_book(session: Session, name: str) -> Book:
    """The book of this name, or NotFound."""
    book = known_books(session).get(name)
    if book is None:
        raise NotFound(f"no book named {name!r}")
    return book


def book_for_folder(session: Session, path: str, name: str | None = None) -> str:
    """The book an ingest of `path` updates: `name` if given, else the folder's own book.

    A folder no book reads from gets its slug, or the slug with the first free `-N`.
    """
    if name is not None:
        return check_book_name(name)
    books = known_books(session)
    wanted = os.path.normpath(path)
    for book in books.values():
        if os.path.normpath(book.path) == wanted:
            return book.name
    base = book_slug(path)
    name, n = base, 2
    while name in books:
        suffix = f"-{n}"
        name, n = base[: 64 - len(suffix)] + suffix, n + 1
    return name


def last_folder_book(session: Session) -> str | None:
    """The book of the most recent completed folder run: the one a pre-books index held."""
    return session.scalar(
        select(IngestJob.book)
        .where(
            IngestJob.status == JobStatus.COMPLETED.value,
            IngestJob.mode.in_(FOLDER_RUNS),
            IngestJob.book.is_not(None),
        )
        .order_by(IngestJob.completed_at.desc(), IngestJob.id.desc())
        .limit(1)
    )


def book_body(book: Book) -> dict[str, Any]:
    """A book as the API and `bookchat admin books --json` show it."""
    last = book.last_ingest
    body = {
        "name": book.name,
        "path": book.path,
        "base_url": book.base_url,
        "pages": book.pages,
        "last_ingest": None
        if last is None
        else {
            "id": last.id,
            "mode": last.mode,
            "completed_at": last.completed_at,
            "seconds": last.seconds,
        },
        "removing": book.removing,
    }
    return BookOut.model_validate(body).model_dump(mode="json")
