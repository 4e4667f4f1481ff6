"""Ingest jobs against each real database: creation, the single claim, progress and outcomes."""

from __future__ import annotations

import uuid
from datetime import timedelta
from functools import partial

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from common.accounts.users import create_user
from common.admin.index_operations import index_state, last_folder_ingest
from common.jobs.ingest_jobs import (
    IngestMode,
    IngestReport,
    IngestRun,
    create_ingest_job,
    fail_ingest_job,
    fail_queued_ingest_job,
    finish_ingest_job,
    get_ingest_job,
    list_ingest_jobs,
    record_progress,
    start_ingest_job,
)
from common.jobs.lifecycle import job_attempts
from common.jobs.watchdog import take_back_lost_jobs
from common.platform.errors import InvalidInput, NotFound
from common.platform.models import IngestJob, JobKind, JobStatus, Role, User, utcnow

# A report of a four-file run; each test sets the counts it checks.
Report = partial(IngestReport, files_total=4)


@pytest.fixture
def admin(session: Session) -> User:
    """A fresh administrator."""
    email = f"a-{uuid.uuid4().hex[:12]}@example.com"
    return create_user(session, email, "pw" * 6, None, Role.ADMIN)


def attempt_of(run: IngestRun | None) -> int | None:
    """The attempt number a start gave, or None."""
    return run.attempt if run is not None else None


def reread(session: Session, job_id: uuid.UUID) -> IngestJob:
    """The job as the database holds it now, not as the identity map remembers it."""
    session.expire_all()
    return get_ingest_job(session, job_id)


def test_a_new_job_is_queued_with_zero_counts(session: Session, admin: User) -> None:
    job = create_ingest_job(session, "/srv/book", True, admin.id)

    stored = reread(session, job.id)
    assert stored.status == JobStatus.QUEUED.value
    assert (stored.path, stored.full, stored.requested_by) == ("/srv/book", True, admin.id)
    assert stored.files_seen == stored.files_failed == stored.embeddings_computed == 0
    assert stored.failures == []
    assert stored.started_at is None and stored.completed_at is None and stored.seconds is None
    assert stored.created_at.utcoffset() == timedelta(0)


def test_the_cli_creates_jobs_without_a_user(session: Session) -> None:
    job = create_ingest_job(session, "/srv/book", False, None)

    assert reread(session, job.id).requested_by is None


def test_an_unknown_job_is_not_found(session: Session) -> None:
    with pytest.raises(NotFound):
        get_ingest_job(session, uuid.uuid4())


def test_a_job_is_started_only_once(session: Session) -> None:
    job = create_ingest_job(session, "/srv/book", False, None)

    first, second = start_ingest_job(session, job.id), start_ingest_job(session, job.id)

    assert first is not None and first.attempt == 1
    assert second is None
    stored = reread(session, job.id)
    assert stored.status == JobStatus.IN_PROGRESS.value
    assert stored.started_at is not None and stored.lease_expires_at is not None
    assert [a.number for a in job_attempts(session, JobKind.INGEST, job.id)] == [1]


def test_a_run_whose_lease_expired_is_taken_back_as_a_new_attempt(session: Session) -> None:
    job = create_ingest_job(session, "/srv/book", False, None)
    assert attempt_of(start_ingest_job(session, job.id, worker="w1")) == 1
    expired = utcnow() - timedelta(seconds=1)
    session.execute(
        update(IngestJob).where(IngestJob.id == job.id).values(lease_expires_at=expired)
    )

    [taken] = take_back_lost_jobs(session, JobKind.INGEST, utcnow(), max_lost_attempts=3)

    assert (taken.job_id, taken.attempt, taken.dead) == (job.id, 1, False)
    assert reread(session, job.id).status == JobStatus.QUEUED.value
    assert record_progress(session, job.id, Report(files_seen=1), attempt=1) is False
    assert attempt_of(start_ingest_job(session, job.id, worker="w2")) == 2
    [lost, running] = job_attempts(session, JobKind.INGEST, job.id)
    assert (lost.outcome, lost.worker, running.outcome, running.worker) == (
        "lost",
        "w1",
        None,
        "w2",
    )


def test_progress_is_written_while_running(session: Session) -> None:
    job = create_ingest_job(session, "/srv/book", False, None)
    assert record_progress(session, job.id, Report(files_seen=1), attempt=1) is False
    start_ingest_job(session, job.id)
    report = Report(files_seen=2, files_changed=1, chunks_written=5, embeddings_computed=5)
    report.failures["bad.md"] = "not valid UTF-8"
    report.seconds = 0.25

    assert record_progress(session, job.id, report, attempt=1) is True

    stored = reread(session, job.id)
    assert stored.status == JobStatus.IN_PROGRESS.value
    assert (stored.files_total, stored.files_seen, stored.files_changed) == (4, 2, 1)
    assert (stored.chunks_written, stored.embeddings_computed, stored.files_failed) == (5, 5, 1)
    assert stored.failures == [{"source": "bad.md", "error": "not valid UTF-8"}]
    assert stored.seconds == 0.25


def test_finish_records_counts_collection_and_time(session: Session) -> None:
    job = create_ingest_job(session, "/srv/book", False, None)
    start_ingest_job(session, job.id)
    report = Report(files_seen=4, files_changed=3, files_skipped=1, files_deleted=2)
    report.chunks_written, report.embeddings_computed, report.seconds = 12, 9, 1.23456
    report.failures.update({"z.md": "broken", "a.md": "empty"})

    assert finish_ingest_job(session, job.id, report, "textbook_v2", attempt=1) is True

    stored = reread(session, job.id)
    assert stored.status == JobStatus.COMPLETED.value
    assert (stored.files_changed, stored.files_skipped, stored.files_deleted) == (3, 1, 2)
    assert (stored.chunks_written, stored.embeddings_computed) == (12, 9)
    assert stored.failures == [
        {"source": "a.md", "error": "empty"},
        {"source": "z.md", "error": "broken"},
    ]
    assert (stored.files_failed, stored.collection, stored.seconds) == (2, "textbook_v2", 1.235)
    assert stored.started_at is not None and stored.completed_at is not None
    assert stored.started_at <= stored.completed_at
    # A finished job is no longer anyone's to run, update or fail.
    assert start_ingest_job(session, job.id) is None
    assert record_progress(session, job.id, Report(files_seen=1), attempt=1) is False
    assert fail_ingest_job(session, job.id, "late", attempt=1) is False
    assert reread(session, job.id).status == JobStatus.COMPLETED.value


def test_fail_records_the_message(session: Session) -> None:
    job = create_ingest_job(session, "/nowhere", False, None)
    start_ingest_job(session, job.id)

    assert fail_ingest_job(session, job.id, "folder not found: /nowhere", attempt=1) is True

    stored = reread(session, job.id)
    assert stored.status == JobStatus.FAILED.value
    assert stored.error_message == "folder not found: /nowhere"
    assert stored.completed_at is not None
    assert finish_ingest_job(session, job.id, Report(), "textbook_v1", attempt=1) is False
    assert reread(session, job.id).status == JobStatus.FAILED.value


def test_a_job_that_was_never_queued_can_fail(session: Session) -> None:
    job = create_ingest_job(session, "/srv/book", False, None)

    assert fail_queued_ingest_job(session, job.id, "the job could not be queued") is True
    assert reread(session, job.id).status == JobStatus.FAILED.value
    assert start_ingest_job(session, job.id) is None


def test_jobs_are_listed_newest_first(session: Session) -> None:
    base = utcnow() + timedelta(days=1)  # after anything other tests left behind
    jobs = [create_ingest_job(session, f"/srv/book-{i}", False, None) for i in range(3)]
    for i, job in enumerate(jobs):
        job.created_at = base + timedelta(seconds=i)
    session.flush()

    listed = list_ingest_jobs(session, 2)

    assert [job.path for job in listed] == ["/srv/book-2", "/srv/book-1"]


def test_start_says_what_the_row_asks_for(session: Session) -> None:
    # Three books, since one book's jobs run one at a time.
    update_job = create_ingest_job(session, "/srv/book", False, None, book="b1")
    full_job = create_ingest_job(session, "/srv/book", True, None, allow_empty=True, book="b2")
    page_job = create_ingest_job(
        session, "/srv/book", False, None, document="a/b.md", book="b3", base_url="/b3/"
    )

    runs = [start_ingest_job(session, job.id) for job in (update_job, full_job, page_job)]

    assert runs == [
        IngestRun(1, "/srv/book", IngestMode.UPDATE, None, False, "b1"),
        IngestRun(1, "/srv/book", IngestMode.FULL, None, True, "b2"),
        IngestRun(1, "/srv/book", IngestMode.DOCUMENT, "a/b.md", False, "b3", "/b3/"),
    ]
    assert [reread(session, job.id).mode for job in (update_job, full_job, page_job)] == [
        "update",
        "full",
        "document",
    ]


@pytest.mark.parametrize(
    "source", ["../etc/passwd.md", "/etc/x.md", "a/../../b.md", "notes.txt", "_partial.md", ""]
)
def test_a_document_must_be_a_page_inside_the_folder(session: Session, source: str) -> None:
    with pytest.raises(InvalidInput):
        create_ingest_job(session, "/srv/book", False, None, document=source)


def test_a_refused_run_keeps_its_counts_and_failures(session: Session) -> None:
    job = create_ingest_job(session, "/srv/book", False, None)
    start_ingest_job(session, job.id)
    report = Report(files_total=1, files_seen=1)
    report.failures["leak.md"] = "a symbolic link that leaves INGEST_ROOTS: not followed"

    assert fail_ingest_job(
        session, job.id, "no page", attempt=1, code="empty_source", report=report
    )

    stored = reread(session, job.id)
    assert (stored.status, stored.error_code, stored.error_message) == (
        "failed",
        "empty_source",
        "no page",
    )
    assert (stored.files_total, stored.files_failed) == (1, 1)
    assert stored.failures[0]["source"] == "leak.md"


def test_the_index_is_what_the_last_folder_run_left(session: Session) -> None:
    later = utcnow() + timedelta(days=2)  # after anything other tests left behind
    folder = create_ingest_job(session, "/srv/book", True, None)
    start_ingest_job(session, folder.id)
    report = Report(files_seen=4, files_changed=3, files_skipped=1, seconds=2.5)
    finish_ingest_job(session, folder.id, report, "textbook__minilm-l6-v2-int8-384__v3", attempt=1)
    page = create_ingest_job(session, "/srv/book", False, None, document="a.md")
    start_ingest_job(session, page.id)
    finish_ingest_job(session, page.id, Report(files_changed=1), None, attempt=1)
    failed = create_ingest_job(session, "/srv/other", False, None)
    start_ingest_job(session, failed.id)
    fail_ingest_job(session, failed.id, "refused", attempt=1, code="path_unavailable")
    for offset, job in enumerate((folder, page, failed)):
        session.execute(
            update(IngestJob)
            .where(IngestJob.id == job.id)
            .values(completed_at=later + timedelta(seconds=offset))
        )

    assert last_folder_ingest(session) == reread(session, folder.id)
    state = index_state(session, "textbook")

    assert state["collection"] == "textbook__minilm-l6-v2-int8-384__v3"
    embedder = (state["embedder"], state["dimension"], state["version"])
    assert embedder == ("minilm-l6-v2-int8", 384, 3)
    assert (state["documents"], state["folder"], state["alias"]) == (4, "/srv/book", "textbook")
    assert state["last_ingest"]["id"] == folder.id
    assert state["last_ingest"]["mode"] == "full"
