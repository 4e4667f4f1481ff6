"""Requests of the insights API: the window, the format, and which table as CSV."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from common.admin.schemas import SINCE_SCHEMA, check_since, parse_since
from common.platform.errors import InvalidInput
from common.platform.models import utcnow

DEFAULT_WINDOW = timedelta(days=7)
Table = Literal["gaps", "most_asked", "pages", "per_day"]


class InsightsQuery(BaseModel):
    """`since` and `until`: 30m, 1h, 7d ago or an RFC 3339 time (default: the last 7 days)."""

    model_config = ConfigDict(extra="forbid")

    since: str | None = Field(default=None, max_length=40, json_schema_extra=SINCE_SCHEMA)
    until: str | None = Field(default=None, max_length=40, json_schema_extra=SINCE_SCHEMA)
    format: Literal["json", "csv"] = "json"
    table: Table | None = Field(default=None, description="With format=csv: the table")

    @field_validator("since", "until")
    @classmethod
    def _parses(cls, value: str | None) -> str | None:
        return check_since(value)

    def window(self) -> tuple[datetime, datetime]:
        """(since, until), checked: until defaults to now, since to 7 days before until."""
        return resolve_window(self.since, self.until)


def resolve_window(since: str | None, until: str | None) -> tuple[datetime, datetime]:
    """The window a request names; InvalidInput when it is empty or reversed."""
    end = parse_since(until) if until else utcnow()
    start = parse_since(since) if since else end - DEFAULT_WINDOW
    if start >= end:
        raise InvalidInput("`since` must be before `until`")
    return start, end


class RunPath(BaseModel):
    run_id: uuid.UUID
