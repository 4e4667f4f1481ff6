"""Pydantic models of the HTTP API: request validation and the OpenAPI document."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from common.ingest.sources import is_indexable, is_source_name

MAX_MESSAGE_CHARS = 4000
MAX_SELECTED_TEXT_CHARS = 20_000
MAX_PAGE_URL_CHARS = 2048
MAX_PASSWORD_CHARS = 1024
MIN_PASSWORD_CHARS = 8
MAX_INGEST_PATH_CHARS = 4096
# The server refuses NUL in any string (web/limits.py); the document says so with a pattern.
NO_NUL = r"^[^\x00]*$"
# Whitespace spelled out (Unicode's White_Space, which the server strips): `\s` differs between
# the server's regex engine and JSON Schema's (ECMA-262), the document's.
_WS = r"\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# Text the server strips first: some character that is neither whitespace nor NUL.
NOT_BLANK = rf"^[^\x00]*[^{_WS}\x00][^\x00]*$"
EMAIL_PATTERN = rf"^[^@{_WS}\x00]{{1,64}}@[^@{_WS}\x00]+\.[^@{_WS}\x00]+$"
# A Markdown page inside a book's folder, as `is_source_name` and `is_indexable` check it.
_PART = r"[^/\\\x00._][^/\\\x00]*"
SOURCE_PATTERN = rf"^(?:{_PART}/)*{_PART}\.[mM][dD][xX]?$"
BOOK_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"  # as common/books.py checks it
BOOK_FIELD = Field(
    default=None,
    pattern=BOOK_NAME_PATTERN,
    description="The book (source): lowercase letters, digits and dashes; default: the "
    "folder's own book (a new folder: its last part, e.g. `docs`, or `docs-2` if taken)",
    examples=["robotics"],
)


def _query_bool(value: object) -> object:
    # A query string carries text: only the spellings the document gives, `true` and `false`.
    if isinstance(value, str):
        if value not in ("true", "false"):
            raise ValueError("use true or false")
        return value == "true"
    return value


# A boolean in a query string, as the document types it (`true`/`false`); for every query model.
QueryBool = Annotated[bool, BeforeValidator(_query_bool), Field(strict=True)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SignupRequest(StrictModel):
    email: str = Field(pattern=EMAIL_PATTERN, max_length=320, examples=["ada@example.com"])
    password: str = Field(
        min_length=MIN_PASSWORD_CHARS, max_length=MAX_PASSWORD_CHARS, pattern=NO_NUL
    )
    name: str | None = Field(default=None, max_length=200, pattern=NO_NUL)


class LoginRequest(StrictModel):
    email: str = Field(max_length=320, pattern=NO_NUL)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_CHARS, pattern=NO_NUL)


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str | None = None
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int


class UserOut(BaseModel):
    id: uuid.UUID
    object: Literal["user"] = "user"
    email: str | None = Field(description="None for guests")
    name: str | None
    role: str
    created_at: datetime


class SignupResponse(TokenResponse):
    user: UserOut


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


class IdempotencyHeader(BaseModel):
    idempotency_key: str | None = Field(
        default=None, alias="Idempotency-Key", min_length=1, max_length=255, pattern=NO_NUL
    )


class JobPath(BaseModel):
    job_id: uuid.UUID


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
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None


class ConversationPath(BaseModel):
    conversation_id: uuid.UUID


class ListQuery(BaseModel):
    limit: int = Field(default=20, ge=1, le=100)
    after: uuid.UUID | None = Field(default=None, description="Cursor: id of the last item seen")


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
    created_at: datetime


class ConversationDetail(ConversationOut):
    messages: list[MessageOut]


class ConversationList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ConversationOut]
    first_id: uuid.UUID | None
    last_id: uuid.UUID | None
    has_more: bool


class IngestRequest(StrictModel):
    path: str = Field(
        min_length=1,
        max_length=MAX_INGEST_PATH_CHARS,
        pattern=NO_NUL,
        description="A textbook folder as the worker sees it",
        examples=["/srv/textbook/docs"],
    )
    full: bool = Field(
        default=False, strict=True, description="Rebuild instead of updating what changed"
    )
    allow_empty: bool = Field(
        default=False,
        strict=True,
        description="Let a folder without any ingestible page empty its book (else the job "
        "fails with `empty_source` and the index is left as it was)",
    )
    book: str | None = BOOK_FIELD
    base_url: str | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        pattern=NO_NUL,
        description="The base of this book's page URLs in citations; default TEXTBOOK_BASE_URL",
        examples=["https://robotics.example.org/docs/"],
    )


class RebuildRequest(StrictModel):
    path: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_INGEST_PATH_CHARS,
        pattern=NO_NUL,
        description="The folder to rebuild from; default: the book's folder, or (no book) the "
        "folder of the last completed ingest",
    )
    allow_empty: bool = Field(
        default=False, strict=True, description="As for POST /v1/admin/ingest"
    )
    book: str | None = BOOK_FIELD


class DocumentReindexRequest(StrictModel):
    source: str = Field(
        min_length=1,
        max_length=MAX_INGEST_PATH_CHARS,
        pattern=SOURCE_PATTERN,
        description="A page as the index names it: relative to its book's folder",
        examples=["01-ros2/nodes-and-topics.md"],
    )
    book: str | None = Field(
        default=None,
        pattern=BOOK_NAME_PATTERN,
        description="The page's book; default: the book of the last completed ingest",
    )

    @field_validator("source")
    @classmethod
    def _a_page_inside_the_folder(cls, value: str) -> str:
        if not is_source_name(value):
            raise ValueError("must be a relative path inside the folder, without `..`")
        if not is_indexable(value):
            raise ValueError("must be a .md or .mdx page outside hidden and `_` folders")
        return value


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


class IndexIngestOut(BaseModel):
    id: uuid.UUID
    mode: str
    completed_at: datetime | None
    seconds: float | None


class IndexOut(BaseModel):
    """The index as the last completed folder run left it, read from the ingest_jobs table."""

    object: Literal["index"] = "index"
    alias: str = Field(description="The name chat reads through (QDRANT_COLLECTION)")
    collection: str | None = Field(description="The versioned collection behind the alias")
    embedder: str | None = Field(description="The embedding model that built it (a slug)")
    dimension: int | None
    version: int | None
    documents: int | None = Field(description="Pages of every book, as their last runs left them")
    folder: str | None = Field(description="The folder of the last folder run")
    last_ingest: IndexIngestOut | None


class SearchRequest(StrictModel):
    query: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS, pattern=NO_NUL)
    k: int = Field(default=5, ge=1, le=20, strict=True)
    path_prefix: str | None = Field(
        default=None,
        max_length=1024,
        pattern=NO_NUL,
        description="Only this folder or file, e.g. module-1",
    )
    book: str | None = Field(
        default=None, pattern=BOOK_NAME_PATTERN, description="Only this book; default: all"
    )


class SearchResult(BaseModel):
    book: str = Field(description="The book the passage comes from")
    source: str
    heading: str
    title: str
    url: str
    text: str
    score: float


class SearchResults(BaseModel):
    object: Literal["list"] = "list"
    data: list[SearchResult]


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str
    code: str
    errors: list[dict[str, Any]] | None = None


class ConversationRename(StrictModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str = Field(min_length=1, max_length=200, pattern=NOT_BLANK)
