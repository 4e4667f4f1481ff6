"""Request and response models of jobs: chat jobs, conversations and ingest jobs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from common.platform.api_types import (
    MAX_MESSAGE_CHARS,
    MAX_PAGE_URL_CHARS,
    MAX_SELECTED_TEXT_CHARS,
    NO_NUL,
    NOT_BLANK,
    StrictModel,
)


class ChatJobCreate(StrictModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS, pattern=NOT_BLANK)
    conversation_id: uuid.UUID | None = None
    selected_text: str | None = Field(
        default=None, max_length=MAX_SELECTED_TEXT_CHARS, pattern=NO_NUL
    )
    page_url: str | None = Field(default=None, max_length=MAX_PAGE_URL_CHARS, pattern=NO_NUL)

    @field_validator("selected_text", "page_url")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None


class JobPath(BaseModel):
    job_id: uuid.UUID


MAX_FEEDBACK_COMMENT_CHARS = 2000
Rating = Literal["up", "down"]
Reason = Literal["wrong", "unclear", "not_in_book", "other"]
Label = Literal["answered", "refused", "uncertain", "off_topic"]


class FeedbackIn(StrictModel):
    """A reader's rating of an answer; a `reason` only with a thumbs down."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    rating: Rating
    reason: Reason | None = Field(default=None, description="Why thumbs down (only with down)")
    comment: str | None = Field(
        default=None, max_length=MAX_FEEDBACK_COMMENT_CHARS, pattern=NO_NUL,
        description="Free text; blank is none",
    )  # fmt: skip

    @field_validator("comment")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @model_validator(mode="after")
    def _reason_only_when_down(self) -> FeedbackIn:
        if self.reason is not None and self.rating != "down":
            raise ValueError("a reason is given only with a thumbs down")
        return self


class FeedbackOut(BaseModel):
    rating: Rating
    reason: Reason | None
    comment: str | None
    created_at: datetime
    updated_at: datetime


class WaitQuery(BaseModel):
    wait: float = Field(default=0, ge=0, le=30, description="Long-poll up to N seconds")


class Citation(BaseModel):
    n: int = Field(description="The number of the passage, as the answer's [n] markers use it")
    title: str
    heading: str
    url: str
    source: str
    snippet: str
    score: float


class IncompleteDetails(BaseModel):
    reason: Literal["max_output_tokens", "content_filter"] = Field(
        description="The model's token limit, or its content filter, cut the answer short"
    )


class JobError(BaseModel):
    code: str
    message: str


class ChatJobOut(BaseModel):
    id: uuid.UUID
    object: Literal["chat.job"] = "chat.job"
    status: Literal["queued", "in_progress", "completed", "incomplete", "failed", "cancelled"] = (
        Field(description="`incomplete`: finished, but the answer was cut off (see below)")
    )
    task: Literal["chat", "personalize", "translate"] = Field(
        default="chat", description="Answer a question, or rewrite or translate a chapter"
    )
    conversation_id: uuid.UUID | None = Field(description="None for chapter jobs")
    message: str
    selected_text: str | None
    page_url: str | None
    answer: str | None
    citations: list[Citation] = Field(
        description="Exactly the passages the answer's [n] markers cite, by n; every marker "
        "in the answer has one"
    )
    sources: list[Citation] = Field(
        default=[], description="Passages retrieved for the answer but not cited in it"
    )
    incomplete_details: IncompleteDetails | None = Field(
        default=None, description="Why an `incomplete` answer stops early; null otherwise"
    )
    model: str | None
    usage: dict[str, Any] | None
    error: JobError | None
    attempts: int = Field(
        description="Runs by a worker (a run that only found it must wait is a wait)"
    )
    waits: int = Field(
        default=0, description="Times it went back to wait: model capacity, open circuit, no index"
    )
    metrics: dict[str, Any] | None = Field(
        default=None, description="Model calls, retries, rate-limit waits, tokens, cost estimate"
    )
    profile_applied: list[str] | None = Field(
        default=None, description="The reader-profile fields that shaped this answer"
    )
    language: str | None = Field(default=None, description="Target language of a translation")
    label: Label | None = Field(
        default=None,
        description="What became of a finished question: `answered`, `refused` (the book does "
        "not cover it), `uncertain` (answered on weak evidence) or `off_topic`; null before it "
        "finished and for chapter jobs",
    )
    feedback: FeedbackOut | None = Field(
        default=None, description="The reader's rating of the answer, if they gave one"
    )
    cached: bool = Field(
        default=False,
        description="Answered from the answer cache: a copy of an earlier job's answer to the "
        "same question, without a model call (usage is zero); see docs/answer-cache.md",
    )
    cached_from: uuid.UUID | None = Field(
        default=None, description="The job a cached answer was copied from; null otherwise"
    )
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None


class ConversationPath(BaseModel):
    conversation_id: uuid.UUID


class ConversationOut(BaseModel):
    id: uuid.UUID
    object: Literal["conversation"] = "conversation"
    title: str
    created_at: datetime
    updated_at: datetime


class MessageOut(BaseModel):
    role: Literal["user", "assistant"]
    content: str | None
    job_id: uuid.UUID
    status: str
    citations: list[Citation] = []
    feedback: FeedbackOut | None = Field(
        default=None, description="On an assistant message: the reader's rating of it"
    )
    created_at: datetime


class ConversationDetail(ConversationOut):
    messages: list[MessageOut]


class ConversationList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ConversationOut]
    first_id: uuid.UUID | None
    last_id: uuid.UUID | None
    has_more: bool


class IngestFailure(BaseModel):
    source: str
    error: str


class IngestJobOut(BaseModel):
    id: uuid.UUID
    object: Literal["ingest.job"] = "ingest.job"
    status: Literal["queued", "in_progress", "completed", "failed", "cancelled"]
    path: str
    full: bool
    mode: Literal["update", "full", "document", "remove"] = Field(
        description="`update` what changed, `full` rebuild, re-index one `document`, or "
        "`remove` a book"
    )
    book: str | None = Field(description="The book (source) the run touches")
    base_url: str | None = Field(description="The book's URL base (null: TEXTBOOK_BASE_URL)")
    document: str | None = Field(description="The page a `document` run re-indexes")
    allow_empty: bool
    requested_by: uuid.UUID | None
    files_total: int
    files_seen: int
    files_changed: int
    files_skipped: int
    files_deleted: int
    files_failed: int
    chunks_written: int
    embeddings_computed: int
    failures: list[IngestFailure]
    error_code: str | None = Field(
        description="Why the whole run failed: `path_unavailable`, `empty_source`, `no_index`, "
        "`rebuild_required`, `ingest_failed`, ..."
    )
    error_message: str | None = Field(description="Why the whole run failed, if it did")
    collection: str | None = Field(
        description="The physical collection a folder run wrote (null for a document run)"
    )
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    seconds: float | None


class IngestListQuery(BaseModel):
    limit: int = Field(default=20, ge=1, le=100)


class IngestJobList(BaseModel):
    object: Literal["list"] = "list"
    data: list[IngestJobOut]


class ConversationRename(StrictModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str = Field(min_length=1, max_length=200, pattern=NOT_BLANK)
