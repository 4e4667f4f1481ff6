"""The admin page's routes: the insights with the queues beside them, CSV, and two actions."""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import urlencode

from flask import redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from common.admin.audit import Actor, AuditNote, audited
from common.admin.operator_jobs import JobFilters, list_jobs
from common.admin.queue_overview import queue_overview
from common.admin.reprocess import queue_bulk_retry
from common.platform.after_commit import commit
from common.platform.errors import NotFound
from common.platform.models import JobStatus, utcnow
from web.admin_page import report_source
from web.admin_page.auth import csrf_token, current_admin
from web.admin_page.csv_tables import TABLES, report_csv
from web.admin_page.dashboard import build_charts, daily_rates, safe_href
from web.admin_page.window import Window, parse_window
from web.admin_serializers import admin_job_body
from web.problems import request_id
from web.resources import db, resources

DEAD_LETTERS_SHOWN = 20
# Fixed messages after an action, named in the redirect (never text taken from the request).
NOTICES = {
    "recompute": "Recomputation started: the page refreshes until it is done.",
    "recomputed": "The insights of this window were recomputed.",
    "retry": "The dead letters were queued for a retry (a reprocess job).",
}
# Every dead letter: failed jobs whose cause a retry may fix.
DEAD_LETTERS = JobFilters(status=JobStatus.FAILED.value, dead=True)
_RETRY_KEY = re.compile(r"[0-9a-f]{32}")


def _window() -> Window:
    return parse_window(request.values, utcnow())


def _back(window: Window, notice: str) -> Response:
    query = urlencode({**window.query(), "notice": notice})
    return redirect(f"{url_for('admin_page.dashboard')}?{query}", 303)


def _actor() -> Actor:
    admin = current_admin()
    return Actor(admin.id, admin.email or str(admin.id))


def _notice(run: dict[str, Any] | None) -> str:
    notice = request.args.get("notice", "")
    return "recomputed" if notice == "recompute" and run is None else notice


def dashboard() -> str:
    """GET /admin: the insights as charts and tables, the queues and dead letters beside them."""
    window = _window()
    report = report_source.load_report(db(), window.since, window.until)
    run = report_source.run_in_progress(db(), window.since, window.until)
    dead, more_dead = list_jobs(db(), DEAD_LETTERS, DEAD_LETTERS_SHOWN)
    context: dict[str, Any] = {
        "window": window,
        "report": report,
        "charts": build_charts(report) if report else {},
        "rates": daily_rates(report.get("per_day", [])) if report else [],
        "run": run,
        "queues": queue_overview(db(), resources().redis)["data"],
        "dead_letters": [admin_job_body(found) for found in dead],
        "more_dead_letters": more_dead,
        "tables": list(TABLES),
        "notice": NOTICES.get(_notice(run)),
        "csrf_token": csrf_token(),
        "retry_key": uuid.uuid4().hex,  # one per rendered form: a double submit is one retry
        "admin": current_admin(),
        "href": safe_href,
        "refresh": 5 if run else None,  # a meta refresh shows the run's progress without script
    }
    return render_template("admin_page/dashboard.html", **context)


def insights_csv() -> Response:
    """GET /admin/insights.csv?table=...: one table of the window's report as a CSV download."""
    window = _window()
    table = request.args.get("table", "")
    report = report_source.load_report(db(), window.since, window.until)
    if report is None:
        raise NotFound("the insights for this window are not computed yet")
    body = report_csv(report, table)
    name = f"bookchat-{table}-{window.since_day}-{window.until_day}.csv"
    response = Response(body, mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def recompute() -> Response:
    """POST /admin/insights/recompute: start computing the window's report (a reprocess job)."""
    window = _window()
    note = AuditNote(None, {"since": window.since.isoformat(), "until": window.until.isoformat()})
    with audited(
        db(), resources().sessions, _actor(), "insights.recompute", "insights", note, request_id()
    ):
        run_id = report_source.start_run(
            db(), resources().celery, window.since, window.until, current_admin().id
        )
        note.target_id = str(run_id)
        commit(db())  # the run's task is sent once its row is committed
    return _back(window, "recompute")


def _retry_key() -> str | None:
    key = request.form.get("idempotency_key", "")
    return key if _RETRY_KEY.fullmatch(key) else None


def retry_dead_letters() -> Response:
    """POST /admin/dead-letters/retry: retry every dead letter as one reprocess job."""
    window = _window()
    note = AuditNote(None, {"filters": DEAD_LETTERS.as_dict(), "from": "admin page"})
    with audited(
        db(), resources().sessions, _actor(), "jobs.bulk_retry", "reprocess_job", note, request_id()
    ):
        job, replayed = queue_bulk_retry(
            db(),
            resources().celery,
            DEAD_LETTERS,
            dry_run=False,
            requested_by=current_admin().id,
            idempotency_key=_retry_key(),
        )
        commit(db())
        note.target_id = str(job.id)
        note.detail.update(replayed=replayed)
    return _back(window, "retry")
