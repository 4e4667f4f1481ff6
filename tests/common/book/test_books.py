"""Books in the ingest_jobs rows, on each real database: names, listing, one job per book."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from common.book.books import book_for_folder, book_slug, get_book, known_books
from common.jobs.ingest_jobs import (
    IngestReport,
    create_ingest_job,
    fail_ingest_job,
    finish_ingest_job,
    get_ingest_job,
    start_ingest_job,
)
from common.platform.errors import InvalidInput, NotFound
from common.platform.models import IngestJob, JobStatus


def unique(name: str) -> str:
    """A folder name no other test uses (PostgreSQL's database is shared between modules)."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def complete(session: Session, job: IngestJob, pages: int = 4) -> None:
    """Run the job to completion as a worker would."""
    run = start_ingest_job(session, job.id)
    assert run is not None
    report = IngestReport(files_total=pages, files_seen=pages, files_changed=pages)
    assert finish_ingest_job(session, job.id, report, "textbook__m-8__v1", attempt=run.attempt)


@pytest.mark.parametrize(
    ("path", "slug"),
    [("/srv/Robotics Book/", "robotics-book"), ("docs", "docs"), ("/", "book"), ("/srv/_", "book")],
)
def test_a_folders_book_is_named_from_its_last_part(path: str, slug: str) -> None:
    assert book_slug(path) == slug


def test_a_folder_keeps_its_book_and_another_with_the_same_name_gets_its_own(
    session: Session,
) -> None:
    name = unique("docs")
    first = create_ingest_job(session, f"/srv/a/{name}", False, None)
    complete(session, first)

    again = create_ingest_job(session, f"/srv/a/{name}/", False, None)
    other = create_ingest_job(session, f"/srv/b/{name}", False, None)

    assert (first.book, again.book, other.book) == (name, name, f"{name}-2")
    assert get_book(session, name).pages == 4


def test_a_given_name_is_checked_and_may_move_a_book(session: Session) -> None:
    name = unique("book")
    complete(session, create_ingest_job(session, f"/srv/old/{name}", False, None))

    moved = create_ingest_job(session, f"/srv/new/{name}", False, None, book=name)

    assert moved.book == name and known_books(session)[name].path == f"/srv/new/{name}"
    with pytest.raises(InvalidInput):
        book_for_folder(session, "/srv/x", "Not A Name")


def test_a_failed_first_ingest_is_no_book_and_a_removal_ends_one(session: Session) -> None:
    name = unique("gone")
    failed = create_ingest_job(session, f"/srv/{name}", False, None)
    run = start_ingest_job(session, failed.id)
    assert run is not None
    fail_ingest_job(session, failed.id, "no such folder", attempt=run.attempt)
    assert name not in known_books(session)

    complete(session, create_ingest_job(session, f"/srv/{name}", False, None))
    removal = create_ingest_job(session, f"/srv/{name}", False, None, book=name, remove=True)
    assert known_books(session)[name].removing
    complete(session, removal, pages=0)

    assert name not in known_books(session)
    with pytest.raises(NotFound):
        get_book(session, name)


def test_one_job_per_book_runs_at_a_time_and_the_next_waits(session: Session) -> None:
    book, other_book = unique("busy"), unique("free")
    first = create_ingest_job(session, f"/srv/{book}", False, None)
    second = create_ingest_job(session, f"/srv/{book}", True, None)
    other = create_ingest_job(session, f"/srv/{other_book}", False, None)

    assert start_ingest_job(session, first.id) is not None
    assert start_ingest_job(session, second.id) is None  # the same book is busy
    assert start_ingest_job(session, other.id) is not None  # another book is not

    session.expire_all()
    waiting = get_ingest_job(session, second.id)
    assert (waiting.status, waiting.enqueued_at) == (JobStatus.QUEUED.value, None)
    assert waiting.due_at is not None  # the watchdog sends it again when due
    finish_ingest_job(session, first.id, IngestReport(), None, attempt=1)
    session.execute(update(IngestJob).where(IngestJob.id == second.id).values(due_at=None))
    assert start_ingest_job(session, second.id) is not None
