"""Request and response models of the operator's API (jobs, queues, dead letters, audit)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import JsonDict

from common.admin.operator_jobs import JobFilters
from common.jobs.schemas import Label
from common.platform.api_types import NO_NUL, QueryBool
from common.platform.models import JobKind, JobStatus, Role, utcnow

_SINCE = re.compile(r"^(\d{1,6})([smhd])$")
_DURATION = re.compile(r"^(?:\d{1,6}[smh]|\d{1,5}d)$")
_RFC3339 = re.compile(
    r"^\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:(\d\d)(?:\.\d+)?(?:[Zz]|[+-]\d\d:\d\d)$", re.ASCII
)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
# `since` as the document states it: a duration (at most ~273 years back) or an RFC 3339 time,
# or null (no filter), which the model accepts like every other optional filter.
SINCE_SCHEMA: JsonDict = {
    "anyOf": [
        {"type": "string", "pattern": r"^(?:\d{1,6}[smh]|\d{1,5}d)$"},
        {"type": "string", "format": "date-time"},
        {"type": "null"},
    ]
}
StatusName = Literal["queued", "in_progress", "completed", "incomplete", "failed", "cancelled"]


def parse_since(value: str) -> datetime:
    """`1h`, `30m`, `2d` ago, or an ISO 8601 time (UTC when it has no zone)."""
    match = _SINCE.match(value.strip())
    if match:
        try:
            return utcnow() - timedelta(**{_UNITS[match[2]]: int(match[1])})
        except OverflowError as exc:
            raise ValueError("that is further back than dates go") from exc
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise ValueError("use a duration like 30m, 1h, 2d or an ISO 8601 time") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=utcnow().tzinfo)


def check_since(value: str | None) -> str | None:
    """`since` as the API takes it: a duration or an RFC 3339 time (what the document says)."""
    if value is None or _DURATION.match(value):
        return value
    stamp = _RFC3339.match(value)
    if stamp is None:
        raise ValueError("use a duration like 30m, 1h, 2d or an RFC 3339 time")
    if stamp[1] == "60":  # a leap second: Python's datetime has none, so its second before
        value = value[: stamp.start(1)] + "59" + value[stamp.end(1) :]
    parse_since(value.upper())
    return value.upper()


class JobFilterFields(BaseModel):
    """The filters every job listing and bulk operation accepts."""

    model_config = ConfigDict(extra="forbid")

    status: StatusName | None = None
    kind: Literal["chat", "ingest", "reprocess"] | None = None
    user: uuid.UUID | None = Field(default=None, description="The job's owner (account id)")
    error_code: str | None = Field(default=None, max_length=64, pattern=NO_NUL)
    since: str | None = Field(
        default=None,
        max_length=40,
        description="Created since: 30m, 1h, 2d or an RFC 3339 time",
        json_schema_extra=SINCE_SCHEMA,
    )
    dead: bool = Field(default=False, strict=True, description="Only dead letters")
    label: Label | None = Field(default=None, description="Only chat jobs with this label")

    @field_validator("since")
    @classmethod
    def _since_parses(cls, value: str | None) -> str | None:
        return check_since(value)

    def to_filters(self) -> JobFilters:
        """The filters as the domain takes them (a relative `since` resolved now)."""
        return JobFilters(
            status=JobStatus(self.status).value if self.status else None,
            kind=JobKind(self.kind) if self.kind else None,
            user=self.user,
            error_code=self.error_code,
            since=parse_since(self.since) if self.since else None,
            dead=self.dead,
            label=self.label,
        )


class JobListQuery(JobFilterFields):
    dead: QueryBool = Field(default=False, description="Only dead letters")
    limit: int = Field(default=20, ge=1, le=100)
    after: uuid.UUID | None = Field(default=None, description="The last id of the previous page")


class BulkRetryRequest(JobFilterFields):
    """Which jobs to retry; `status` defaults to failed."""

    status: StatusName | None = "failed"
    dry_run: bool = Field(
        default=False, strict=True, description="Only count what would be retried"
    )


class AuditQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=50, ge=1, le=200)
    after: int | None = Field(default=None, ge=0, description="The last id of the previous page")
    action: str | None = Field(default=None, max_length=64, pattern=NO_NUL)
    actor: str | None = Field(default=None, max_length=320, pattern=NO_NUL)
    target_id: str | None = Field(default=None, max_length=4096, pattern=NO_NUL)
    outcome: Literal["ok", "refused", "failed"] | None = None
    since: str | None = Field(default=None, max_length=40, json_schema_extra=SINCE_SCHEMA)

    @field_validator("since")
    @classmethod
    def _since_parses(cls, value: str | None) -> str | None:
        return check_since(value)


class AnyJobPath(BaseModel):
    job_id: uuid.UUID


class UserPath(BaseModel):
    user_id: uuid.UUID


class RoleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "admin"] = Field(description="The account's new role")

    def as_role(self) -> Role:
        """The role as an enum."""
        return Role(self.role)


class AdminList(BaseModel):
    """OpenAI's list shape."""

    object: Literal["list"] = "list"
    data: list[dict[str, Any]]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False


class AdminObject(BaseModel):
    """One object of the operator's API (a job, a reprocess job, a user): `id`, `object`, ..."""

    model_config = ConfigDict(extra="allow")

    id: str
    object: str
