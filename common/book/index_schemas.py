"""Request and response models of the index: ingest a folder, rebuild, re-index a page, search."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from common.book.ingest.sources import is_indexable, is_source_name
from common.platform.api_types import (
    BOOK_FIELD,
    BOOK_NAME_PATTERN,
    MAX_INGEST_PATH_CHARS,
    MAX_MESSAGE_CHARS,
    NO_NUL,
    SOURCE_PATTERN,
    StrictModel,
)


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
