"""Administration: queue a textbook ingest and follow its job."""

from __future__ import annotations

from flask import Response, jsonify
from flask_openapi3 import APIBlueprint, Tag
from flask_openapi3.types import ResponseDict

from common.ingest_jobs import get_ingest_job, list_ingest_jobs, queue_ingest_job
from common.schemas import (
    IngestJobList,
    IngestJobOut,
    IngestListQuery,
    IngestRequest,
    JobPath,
    Problem,
)
from web.resources import db, resources
from web.security import BEARER, current_user_id, require_admin
from web.serializers import ingest_job_body

bp = APIBlueprint(
    "admin",
    __name__,
    url_prefix="/v1/admin",
    abp_tags=[Tag(name="admin")],
    abp_security=BEARER,
)
# Check the role before flask-openapi3 validates the body: others get 401/403, not 422.
bp.before_request(require_admin)
_ERRORS: ResponseDict = {401: Problem, 403: Problem, 422: Problem, 503: Problem}


@bp.post("/ingest", responses={202: IngestJobOut, 400: Problem, **_ERRORS})
def ingest(body: IngestRequest) -> tuple[Response, int]:
    """Queue an ingest of a folder the workers can read; poll the Location for progress."""
    job = queue_ingest_job(
        db(), resources().celery, body.path, full=body.full, requested_by=current_user_id()
    )
    response = jsonify(ingest_job_body(job))
    response.headers["Location"] = f"/v1/admin/ingest/{job.id}"
    response.headers["Retry-After"] = "1"
    return response, 202


@bp.get("/ingest", responses={200: IngestJobList, **_ERRORS})
def index(query: IngestListQuery) -> Response:
    """The most recent ingest jobs, newest first."""
    rows = list_ingest_jobs(db(), query.limit)
    return jsonify({"object": "list", "data": [ingest_job_body(row) for row in rows]})


@bp.get("/ingest/<job_id>", responses={200: IngestJobOut, 404: Problem, **_ERRORS})
def read(path: JobPath) -> Response:
    """An ingest job: status, counts, per-file failures and timings."""
    return jsonify(ingest_job_body(get_ingest_job(db(), path.job_id)))
