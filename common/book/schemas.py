"""Request and response models of the books (sources) API: list them, remove one."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from common.platform.api_types import BOOK_NAME_PATTERN


class BookPath(BaseModel):
    name: str = Field(pattern=BOOK_NAME_PATTERN, description="The book's name, as listed")


class BookIngestOut(BaseModel):
    id: uuid.UUID
    mode: str
    completed_at: datetime | None
    seconds: float | None


class BookOut(BaseModel):
    object: Literal["book"] = "book"
    name: str
    path: str = Field(description="The folder its last ingest read, as the workers see it")
    base_url: str | None = Field(description="The base of its page URLs (null: the default)")
    pages: int | None = Field(description="Pages its last completed ingest indexed or kept")
    last_ingest: BookIngestOut | None = Field(description="Its last completed update or rebuild")
    removing: bool = Field(description="A removal of it is queued or running")


class BookList(BaseModel):
    object: Literal["list"] = "list"
    data: list[BookOut]
