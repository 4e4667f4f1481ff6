"""The insights the page shows, from common.admin.insights: the report, its runs, their progress."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from celery import Celery
from sqlalchemy.orm import Session

from common.admin.insights import current_report
from common.admin.insights.runs import active_run
from common.admin.insights.runs import start_run as start_insights_run


def load_report(session: Session, since: datetime, until: datetime) -> dict[str, Any] | None:
    """The latest report computed for the window, as the API returns it; None if none yet."""
    report = current_report(session, since, until)
    return report.to_dict() if report is not None else None


def run_in_progress(session: Session, since: datetime, until: datetime) -> dict[str, Any] | None:
    """The window's queued or running computation with its progress, if there is one."""
    run = active_run(session, since, until)
    if run is None:
        return None
    total, processed = run.total or 0, run.processed or 0
    percent = min(99, round(100 * processed / total)) if total else 0
    return {"id": str(run.id), "stage": run.stage, "percent": percent}


def start_run(
    session: Session, celery: Celery, since: datetime, until: datetime, requested_by: uuid.UUID
) -> uuid.UUID:
    """Start computing the window's report (or join the run already at it); its id."""
    run = start_insights_run(session, celery, since, until, requested_by)
    return run.id
