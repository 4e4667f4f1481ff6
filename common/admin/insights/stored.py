"""Reports as stored by their runs: the report type and the latest one for a window.

The web reads reports from here without the worker's stack (numpy, the embedder): computing one
is `report.compute_report`, in the worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.platform.models import InsightsRun, ReprocessJob

# A report computed for a window answers requests whose bounds are this close to its own.
FRESH = timedelta(minutes=15)


def iso(at: datetime) -> str:
    """A timestamp as ISO 8601 UTC with a Z."""
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class InsightsReport:
    """The report of one window (see INSIGHTS_CONTRACT: `to_dict` is the API's JSON)."""

    since: datetime
    until: datetime
    computed_at: datetime
    jobs_counted: int
    totals: dict[str, int]
    per_day: list[dict[str, Any]]
    gaps: list[dict[str, Any]]
    most_asked: list[dict[str, Any]]
    pages: dict[str, list[dict[str, Any]]]
    ratings_per_page: list[dict[str, Any]]
    run_id: str | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data, in the contract's shape."""
        return {
            "object": "insights",
            "since": iso(self.since),
            "until": iso(self.until),
            "computed_at": iso(self.computed_at),
            "jobs_counted": self.jobs_counted,
            "totals": self.totals,
            "per_day": self.per_day,
            "gaps": self.gaps,
            "most_asked": self.most_asked,
            "pages": self.pages,
            "ratings_per_page": self.ratings_per_page,
            "run_id": self.run_id,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InsightsReport:
        """A report stored with `to_dict`."""
        return cls(
            since=datetime.fromisoformat(data["since"]),
            until=datetime.fromisoformat(data["until"]),
            computed_at=datetime.fromisoformat(data["computed_at"]),
            jobs_counted=data["jobs_counted"],
            totals=data["totals"],
            per_day=data["per_day"],
            gaps=data["gaps"],
            most_asked=data["most_asked"],
            pages=data["pages"],
            ratings_per_page=data["ratings_per_page"],
            run_id=data.get("run_id"),
        )


def current_report(
    session: Session, since: datetime, until: datetime, fresh: timedelta = FRESH
) -> InsightsReport | None:
    """The latest report computed for this window (bounds within `fresh`), or None."""
    run = session.scalar(
        select(InsightsRun)
        .join(ReprocessJob, ReprocessJob.id == InsightsRun.id)
        .where(
            InsightsRun.report.is_not(None),
            InsightsRun.since.between(since - fresh, since + fresh),
            InsightsRun.until.between(until - fresh, until + fresh),
        )
        .order_by(InsightsRun.computed_at.desc())
        .limit(1)
    )
    if run is None or run.report is None:
        return None
    return InsightsReport.from_dict({**run.report, "run_id": str(run.id)})


def latest_report(session: Session) -> InsightsReport | None:
    """The most recently computed report, whatever its window (None before the first run)."""
    run = session.scalar(
        select(InsightsRun)
        .where(InsightsRun.report.is_not(None))
        .order_by(InsightsRun.computed_at.desc())
        .limit(1)
    )
    if run is None or run.report is None:
        return None
    return InsightsReport.from_dict({**run.report, "run_id": str(run.id)})
