"""The author's insights: what readers ask, what the book fails to answer, which pages matter.

A report is computed by a run on the `reprocess` queue; a request answers with the latest
report computed for its window, or starts a run and answers 202 with the run's Location.
"""

from __future__ import annotations

from flask import Response, jsonify
from flask_openapi3.types import ResponseDict

from common.admin.insights import current_report
from common.admin.insights.runs import get_run, run_body, start_run
from common.admin.insights.schemas import InsightsOut, InsightsQuery, InsightsRunOut, RunPath
from common.admin.insights.tables import table_csv
from common.platform.after_commit import commit
from common.platform.api_types import Problem
from web.resources import db, resources
from web.security import admin_blueprint, current_user_id

bp = admin_blueprint("admin_insights", __name__)
_ERRORS: ResponseDict = {400: Problem, 401: Problem, 403: Problem, 422: Problem, 503: Problem}


@bp.get("/insights", responses={200: InsightsOut, 202: InsightsRunOut, **_ERRORS})
def insights(query: InsightsQuery) -> Response | tuple[Response, int]:
    """The report of a window (default: the last 7 days), or 202 and the run computing it.

    `format=csv&table=gaps|most_asked|pages|per_day` answers one table as CSV (default gaps).
    """
    since, until = query.window()
    report = current_report(db(), since, until)
    if report is None:
        run = start_run(db(), resources().celery, since, until, current_user_id())
        commit(db())
        _, job = get_run(db(), run.id)
        response = jsonify(run_body(run, job))
        response.headers["Location"] = f"/v1/admin/insights/runs/{run.id}"
        response.headers["Retry-After"] = "2"
        return response, 202
    body = report.to_dict()
    if query.format == "csv":
        name = f"insights-{query.table}-{body['since'][:10]}-{body['until'][:10]}.csv"
        return Response(
            table_csv(body, query.table),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return jsonify(body)


@bp.get("/insights/runs/<uuid:run_id>", responses={200: InsightsRunOut, 404: Problem, **_ERRORS})
def insights_run(path: RunPath) -> Response:
    """An insights run: status, stage and progress (processed/total), its report once done."""
    run, job = get_run(db(), path.run_id)
    return jsonify(run_body(run, job))
