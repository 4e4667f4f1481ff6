"""The HTTP API's building blocks: input limits, patterns, strict models, problem details."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

MAX_MESSAGE_CHARS = 4000


MAX_SELECTED_TEXT_CHARS = 20_000


MAX_PAGE_URL_CHARS = 2048


MAX_PASSWORD_CHARS = 1024


MIN_PASSWORD_CHARS = 8


MAX_INGEST_PATH_CHARS = 4096


# The server refuses NUL in any string (web/input_limits.py); the document says so with a pattern.
NO_NUL = r"^[^\x00]*$"


# Whitespace spelled out (Unicode's White_Space, which the server strips): `\s` differs between
# the server's regex engine and JSON Schema's (ECMA-262), the document's.
_WS = r"\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


# Text the server strips first: some character that is neither whitespace nor NUL.
NOT_BLANK = rf"^[^\x00]*[^{_WS}\x00][^\x00]*$"


EMAIL_PATTERN = rf"^[^@{_WS}\x00]{{1,64}}@[^@{_WS}\x00]+\.[^@{_WS}\x00]+$"


# A Markdown page inside a book's folder, as `is_source_name` and `is_indexable` check it; not
# starting with whitespace, which the server strips first (a "/" could then lead).
_PART = r"[^/\\\x00._][^/\\\x00]*"
_FIRST = rf"[^/\\\x00._{_WS}][^/\\\x00]*"


SOURCE_PATTERN = rf"^{_FIRST}(?:/{_PART})*\.[mM][dD][xX]?$"


BOOK_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"  # as common/book/books.py checks it


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


class IdempotencyHeader(BaseModel):
    idempotency_key: str | None = Field(
        default=None, alias="Idempotency-Key", min_length=1, max_length=255, pattern=NO_NUL
    )


class ListQuery(BaseModel):
    limit: int = Field(default=20, ge=1, le=100)
    after: uuid.UUID | None = Field(default=None, description="Cursor: id of the last item seen")


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
