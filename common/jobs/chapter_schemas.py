"""Pydantic models of the chapter-job requests (personalize, translate)."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import JsonDict

from common.book.ingest.sources import is_indexable, is_source_name
from common.platform.api_types import MAX_PAGE_URL_CHARS, NO_NUL, SOURCE_PATTERN, StrictModel

# "Exactly one of source or page_url" as JSON Schema says it: each branch needs its field as a
# string, so one given (the other absent or null) matches one branch, and both match two.
_EXACTLY_ONE: JsonDict = {
    "oneOf": [
        {"required": [name], "properties": {name: {"type": "string"}}}
        for name in ("source", "page_url")
    ]
}


class ChapterRequest(StrictModel):
    """Which chapter: its source name in the index, or its page path."""

    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, json_schema_extra=_EXACTLY_ONE
    )

    source: str | None = Field(
        default=None,
        max_length=1024,
        pattern=SOURCE_PATTERN,
        examples=["01-ros2/nodes-and-topics.md"],
    )
    page_url: str | None = Field(
        default=None,
        max_length=MAX_PAGE_URL_CHARS,
        pattern=NO_NUL,
        examples=["/ros2/nodes-and-topics"],
    )

    @field_validator("source")
    @classmethod
    def _clean_source(cls, value: str | None) -> str | None:
        if value is not None and not (is_source_name(value) and is_indexable(value)):
            raise ValueError("must be a Markdown page's path inside the book, like a/b.md")
        return value

    @model_validator(mode="after")
    def _one_of(self) -> ChapterRequest:
        if (self.source is None) == (self.page_url is None):
            raise ValueError("give exactly one of source or page_url")
        return self


class ChapterTranslateRequest(ChapterRequest):
    language: Literal["ur"] = Field(description="Target language (Urdu)")
