"""SQLAlchemy models: users, conversations, and the chat, ingest and reprocess jobs."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        # PostgreSQL answers in the session's TimeZone, which need not be UTC.
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class Role(enum.StrEnum):
    GUEST = "guest"  # tries the chat before signing up: a daily quota, no profile
    USER = "user"
    ADMIN = "admin"


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    # Finished, but the model stopped early (token limit, content filter): the text is kept.
    INCOMPLETE = "incomplete"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """Whether the job can no longer change."""
        return self in FINISHED_STATUSES


FINISHED_STATUSES = frozenset(
    (JobStatus.COMPLETED, JobStatus.INCOMPLETE, JobStatus.FAILED, JobStatus.CANCELLED)
)


class JobLifecycle:
    """The columns every kind of job shares for its status and scheduling (jobs/lifecycle.py)."""

    status: Mapped[str] = mapped_column(String(20), default=JobStatus.QUEUED.value)
    # Claims by a worker that went on to run the job; a claim that found it had to wait first
    # (model capacity, an open circuit, no index yet) is given back and counted in `waits`.
    attempts: Mapped[int] = mapped_column(default=0)
    waits: Mapped[int] = mapped_column(default=0, server_default="0")
    # Who runs it and until when, when it may run next, and when its id was last handed to the
    # broker (None: not in the broker).
    worker: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None] = mapped_column()
    due_at: Mapped[datetime | None] = mapped_column()
    enqueued_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    completed_at: Mapped[datetime | None] = mapped_column()

    @property
    def job_status(self) -> JobStatus:
        """The status as an enum."""
        return JobStatus(self.status)


class User(Base):
    __tablename__ = "users"

    __table_args__ = (
        UniqueConstraint("auth_provider", "external_id", name="uq_users_external_identity"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    # Guests have no email or password; Better Auth users have no password here.
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20), default=Role.USER.value)
    # "local" for our own accounts and guests; "better-auth" with the issuer's subject id.
    auth_provider: Mapped[str] = mapped_column(String(32), default="local")
    external_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    profile: Mapped[ReaderProfile | None] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )


class ReaderProfile(Base):
    """The background questions the textbook asks a reader, used to pitch answers at them."""

    __tablename__ = "reader_profiles"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    software_level: Mapped[str | None] = mapped_column(String(20))
    programming_languages: Mapped[list[Any]] = mapped_column(default=list)
    robotics_experience: Mapped[str | None] = mapped_column(String(20))
    hardware: Mapped[list[Any]] = mapped_column(default=list)
    learning_goal: Mapped[str | None] = mapped_column(String(500))
    preferred_language: Mapped[str] = mapped_column(String(8), default="en")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(back_populates="profile")


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_user_updated", "user_id", "updated_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    jobs: Mapped[list[ChatJob]] = relationship(
        back_populates="conversation", order_by="ChatJob.created_at"
    )


class ChatJob(JobLifecycle, Base):
    """One question and its answer: a turn of a conversation and a unit of queued work."""

    __tablename__ = "chat_jobs"
    __table_args__ = (
        Index("ix_chat_jobs_user_idempotency", "user_id", "idempotency_key", unique=True),
        Index("ix_chat_jobs_conversation_created", "conversation_id", "created_at"),
        Index("ix_chat_jobs_status", "status"),
        Index("ix_chat_jobs_created", "created_at"),
        Index("ix_chat_jobs_cache_key", "cache_key"),
        Index("ix_chat_jobs_cached_from", "cached_from_job_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # Chapter jobs belong to no conversation.
    conversation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    # "chat" answers `message`; chapter jobs rewrite it ("personalize") or translate it.
    task: Mapped[str] = mapped_column(String(20), default="chat")
    message: Mapped[str] = mapped_column(Text)
    selected_text: Mapped[str | None] = mapped_column(Text)
    page_url: Mapped[str | None] = mapped_column(String(2048))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))

    answer: Mapped[str | None] = mapped_column(Text)
    # The passages the answer's [n] markers cite; `sources`: retrieved but not cited.
    citations: Mapped[list[Any]] = mapped_column(default=list)
    sources: Mapped[list[Any] | None] = mapped_column()
    # Why an `incomplete` answer stopped: "max_output_tokens" or "content_filter".
    incomplete_reason: Mapped[str | None] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(100))
    usage: Mapped[dict[str, Any] | None] = mapped_column()
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    # Which reader-profile fields shaped the answer (None: no profile applied).
    profile_applied: Mapped[list[Any] | None] = mapped_column()
    # Chapter jobs: the target language, and the key their result is cached under.
    language: Mapped[str | None] = mapped_column(String(8))
    cache_key: Mapped[str | None] = mapped_column(String(64))

    metrics: Mapped[dict[str, Any] | None] = mapped_column()
    # When its bounded wait for the model began: submission, or an operator's retry.
    queued_at: Mapped[datetime | None] = mapped_column()
    # What became of a finished chat question, for the author (AnswerLabel); None before it
    # finished, and on rows finished before labels existed.
    label: Mapped[str | None] = mapped_column(String(16))
    # The best retrieved passage's similarity: how strong the book's evidence was.
    top_similarity: Mapped[float | None] = mapped_column()
    # Answered from the answer cache: the job whose answer was copied (docs/answer-cache.md).
    # No foreign key: the source may be deleted with its reader, the copy stays its own.
    cached_from_job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)

    conversation: Mapped[Conversation | None] = relationship(back_populates="jobs")


class AnswerLabel(enum.StrEnum):
    """What became of a finished chat question (common/jobs/answer_labels.py decides)."""

    ANSWERED = "answered"
    REFUSED = "refused"  # the book does not cover it
    UNCERTAIN = "uncertain"  # answered on weak evidence
    OFF_TOPIC = "off_topic"  # not about the book's subject


class FeedbackRating(enum.StrEnum):
    UP = "up"
    DOWN = "down"


class FeedbackReason(enum.StrEnum):
    WRONG = "wrong"
    UNCLEAR = "unclear"
    NOT_IN_BOOK = "not_in_book"
    OTHER = "other"


class AnswerFeedback(Base):
    """A reader's rating of one answer: one per reader and job, replaced when they rate again."""

    __tablename__ = "answer_feedback"
    __table_args__ = (
        UniqueConstraint("job_id", "user_id", name="uq_answer_feedback_reader"),
        Index("ix_answer_feedback_updated", "updated_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("chat_jobs.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    rating: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str | None] = mapped_column(String(16))
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class JobKind(enum.StrEnum):
    CHAT = "chat"
    INGEST = "ingest"
    REPROCESS = "reprocess"


class AttemptOutcome(enum.StrEnum):
    COMPLETED = "completed"
    INCOMPLETE = "incomplete"  # finished with a cut-off answer
    FAILED = "failed"
    CANCELLED = "cancelled"
    REQUEUED = "requeued"  # waiting for model capacity or the first index
    HANDED_BACK = "handed_back"  # its worker shut down and gave the job back
    LOST = "lost"  # its worker stopped heartbeating; the watchdog took the job back
    SKIPPED = "skipped"  # the run found nothing to do (finished meanwhile)


class JobAttempt(Base):
    """One run of a job by a worker: when, where, and how it ended."""

    __tablename__ = "job_attempts"
    __table_args__ = (
        UniqueConstraint("job_kind", "job_id", "number", name="uq_job_attempts_number"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_kind: Mapped[str] = mapped_column(String(20))
    job_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    number: Mapped[int] = mapped_column()
    worker: Mapped[str | None] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column()
    outcome: Mapped[str | None] = mapped_column(String(20))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    # The last lines of the traceback of an unexpected error, for the operator.
    traceback: Mapped[str | None] = mapped_column(Text)


class AuditEntry(Base):
    """Who did what to which job, document, user or setting, when, and how it went."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_action", "action"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    actor: Mapped[str] = mapped_column(String(320))  # an admin's email, or "cli:<os user>"
    action: Mapped[str] = mapped_column(String(64))
    target_kind: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(4096))
    outcome: Mapped[str] = mapped_column(String(20))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    request_id: Mapped[str | None] = mapped_column(String(128))


class ReprocessJob(JobLifecycle, Base):
    """An operator's bulk operation on other jobs (a bulk retry), run on the reprocess queue."""

    __tablename__ = "reprocess_jobs"
    __table_args__ = (
        UniqueConstraint("requested_by", "idempotency_key", name="uq_reprocess_idempotency"),
        Index("ix_reprocess_jobs_status", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    operation: Mapped[str] = mapped_column(String(32))
    filters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    dry_run: Mapped[bool] = mapped_column(default=False)
    requested_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    matched: Mapped[int] = mapped_column(default=0)
    requeued: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)


class IngestJob(JobLifecycle, Base):
    """One run of ingesting a textbook folder: its counts, per-file failures and timings."""

    __tablename__ = "ingest_jobs"
    __table_args__ = (
        Index("ix_ingest_jobs_created", "created_at"),
        Index("ix_ingest_jobs_status", "status"),
        Index("ix_ingest_jobs_book", "book", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    # None when the CLI or `bookchat dev` asked, not an API user.
    requested_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    path: Mapped[str] = mapped_column(String(4096))
    full: Mapped[bool] = mapped_column(default=False)
    # "update" (what changed), "full" (a new collection), "document" (one file, re-embedded),
    # "remove" (the book's points deleted).
    mode: Mapped[str] = mapped_column(String(20), default="update")
    # The book (source) the run touches, common/book/books.py; None only on rows a worker of an
    # earlier release made and the 0007 migration could not name.
    book: Mapped[str | None] = mapped_column(String(64))
    # The base of the book's page URLs; None: TEXTBOOK_BASE_URL.
    base_url: Mapped[str | None] = mapped_column(String(2048))
    document: Mapped[str | None] = mapped_column(String(4096))
    # A folder without documents normally never replaces an index; this says it may.
    allow_empty: Mapped[bool] = mapped_column(default=False)

    files_total: Mapped[int] = mapped_column(default=0)
    files_seen: Mapped[int] = mapped_column(default=0)
    files_changed: Mapped[int] = mapped_column(default=0)
    files_skipped: Mapped[int] = mapped_column(default=0)
    files_deleted: Mapped[int] = mapped_column(default=0)
    files_failed: Mapped[int] = mapped_column(default=0)
    chunks_written: Mapped[int] = mapped_column(default=0)
    embeddings_computed: Mapped[int] = mapped_column(default=0)
    # [{"source": "ros2/nodes.md", "error": "not valid UTF-8: ..."}, ...]
    failures: Mapped[list[Any]] = mapped_column(default=list)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    collection: Mapped[str | None] = mapped_column(String(255))
    seconds: Mapped[float | None] = mapped_column()


class QuestionVector(Base):
    """A chat question's embedding, computed once, and the insights group it belongs to."""

    __tablename__ = "question_vectors"
    __table_args__ = (Index("ix_question_vectors_group", "group_id"),)

    job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("chat_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    model: Mapped[str] = mapped_column(String(64))
    # Unit vector as little-endian float16 bytes (384-d MiniLM: 768 bytes).
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    group_id: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class InsightsGroup(Base):
    """A group of questions alike in meaning: the running sum of its members' vectors."""

    __tablename__ = "insights_groups"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    model: Mapped[str] = mapped_column(String(64))
    # Sum of the members' unit vectors as float32 bytes; its direction is the centroid.
    vector_sum: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class InsightsRun(Base):
    """One computation of the insights report for a window: progress, then the report."""

    __tablename__ = "insights_runs"
    __table_args__ = (Index("ix_insights_runs_window", "since", "until"),)

    # The reprocess job (operation "insights") that runs it: status, attempts, lease.
    id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reprocess_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    since: Mapped[datetime] = mapped_column()
    until: Mapped[datetime] = mapped_column()
    stage: Mapped[str] = mapped_column(String(32), default="queued")
    processed: Mapped[int] = mapped_column(default=0)
    total: Mapped[int] = mapped_column(default=0)
    report: Mapped[dict[str, Any] | None] = mapped_column()
    computed_at: Mapped[datetime | None] = mapped_column()


class InsightsFinding(Base):
    """A model's finding and suggestion for one gap group, cached on the group's members."""

    __tablename__ = "insights_findings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    finding: Mapped[str] = mapped_column(Text)
    suggestion: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
