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
MARGIN = timedelta(days=1)
Table = Literal["gaps", "most_asked", "pages", "per_day"]


class InsightsQuery(BaseModel):
    """`since` and `until`: 30m, 1h, 7d ago or an RFC 3339 time (default: the last 7 days)."""

    model_config = ConfigDict(extra="forbid")

    since: str | None = Field(default=None, max_length=40, json_schema_extra=SINCE_SCHEMA)
    until: str | None = Field(default=None, max_length=40, json_schema_extra=SINCE_SCHEMA)
    format: Literal["json", "csv"] = "json"
    table: Table = Field(default="gaps", description="With format=csv: which table")

    @field_validator("since", "until")
    @classmethod
    def _parses(cls, value: str | None) -> str | None:
        return check_since(value)

    def window(self) -> tuple[datetime, datetime]:
        """(since, until), checked: until defaults to now, since to 7 days before until."""
        return resolve_window(self.since, self.until)


def resolve_window(since: str | None, until: str | None) -> tuple[datetime, datetime]:
    """The window a request names; InvalidInput when it is empty, reversed or out of dates."""
    end = parse_since(until) if until else utcnow()
    try:
        start = parse_since(since) if since else end - DEFAULT_WINDOW
        # Trends compare with the window as long before it; reports match within a margin.
        _ = (start - (end - start) - MARGIN, end + MARGIN)
    except OverflowError as exc:
        raise InvalidInput("the window (and the one as long before it) must fit in dates") from exc
    if start >= end:
        raise InvalidInput("`since` must be before `until`")
    return start, end


class RunPath(BaseModel):
    run_id: uuid.UUID


class InsightsOut(BaseModel):
    """The insights report (INSIGHTS_CONTRACT.md): totals, per day, gaps, most asked, pages."""

    model_config = ConfigDict(extra="allow")

    object: Literal["insights"]
    since: str
    until: str
    computed_at: str
    jobs_counted: int


class InsightsRunOut(BaseModel):
    """An insights run: status, stage and progress; its report once completed."""

    model_config = ConfigDict(extra="allow")

    id: str
    object: Literal["insights.run"]
    status: str
