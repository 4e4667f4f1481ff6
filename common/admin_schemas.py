"""Request and response models of the operator's API (jobs, queues, dead letters, audit)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from common.admin_jobs import JobFilters
from common.models import JobKind, JobStatus, Role, utcnow

_SINCE = re.compile(r"^(\d{1,6})([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
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


class JobFilterFields(BaseModel):
    """The filters every job listing and bulk operation accepts."""

    model_config = ConfigDict(extra="forbid")

    status: StatusName | None = None
    kind: Literal["chat", "ingest", "reprocess"] | None = None
    user: uuid.UUID | None = Field(default=None, description="The job's owner (account id)")
    error_code: str | None = Field(default=None, max_length=64)
    since: str | None = Field(
        default=None, max_length=40, description="Created since: 30m, 1h, 2d or ISO 8601"
    )
    dead: bool = Field(default=False, description="Only dead letters")

    @field_validator("since")
    @classmethod
    def _since_parses(cls, value: str | None) -> str | None:
        if value is not None:
            parse_since(value)
        return value

    def to_filters(self) -> JobFilters:
        """The filters as the domain takes them (a relative `since` resolved now)."""
        return JobFilters(
            status=JobStatus(self.status).value if self.status else None,
            kind=JobKind(self.kind) if self.kind else None,
            user=self.user,
            error_code=self.error_code,
            since=parse_since(self.since) if self.since else None,
            dead=self.dead,
        )


class JobListQuery(JobFilterFields):
    limit: int = Field(default=20, ge=1, le=100)
    after: uuid.UUID | None = Field(default=None, description="The last id of the previous page")


class BulkRetryRequest(JobFilterFields):
    """Which jobs to retry; `status` defaults to failed."""

    status: StatusName | None = "failed"
    dry_run: bool = Field(default=False, description="Only count what would be retried")


class AuditQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=50, ge=1, le=200)
    after: int | None = Field(default=None, ge=0, description="The last id of the previous page")
    action: str | None = Field(default=None, max_length=64)
    actor: str | None = Field(default=None, max_length=320)
    target_id: str | None = Field(default=None, max_length=4096)
    outcome: Literal["ok", "refused", "failed"] | None = None
    since: str | None = Field(default=None, max_length=40)

    @field_validator("since")
    @classmethod
    def _since_parses(cls, value: str | None) -> str | None:
        if value is not None:
            parse_since(value)
        return value


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
