"""Administration: queue a textbook ingest and follow its job."""

from __future__ import annotations

import logging

from flask import Response, jsonify
from flask_openapi3 import APIBlueprint, Tag
from flask_openapi3.types import ResponseDict

from common.errors import ServiceUnavailable
from common.ingest_jobs import (
    create_ingest_job,
    fail_ingest_job,
    get_ingest_job,
    list_ingest_jobs,
)
from common.queue import enqueue_ingest
from common.schemas import (
    IngestJobList,
    IngestJobOut,
    IngestListQuery,
    IngestRequest,
    JobPath,
    Problem,
)
from web.resources import db, resources
from web.security import BEARER, admin_required, current_user_id, require_admin
from web.serializers import ingest_job_body

log = logging.getLogger(__name__)
bp = APIBlueprint(
    "admin",
    __name__,
    url_prefix="/v1/admin",
    abp_tags=[Tag(name="admin")],
    abp_security=BEARER,
)
# Check the role before flask-openapi3 validates the body: others get 401/403, not 422.
bp.before_request(require_admin)
_ERRORS: ResponseDict = {401: Problem, 403: Problem, 422: Problem}


@bp.post("/ingest", responses={202: IngestJobOut, 400: Problem, 503: Problem, **_ERRORS})
@admin_required
def ingest(body: IngestRequest) -> tuple[Response, int]:
    """Queue an ingest of a folder the workers can read; poll the Location for progress."""
    session, res = db(), resources()
    job = create_ingest_job(session, body.path, body.full, current_user_id())
    session.commit()
    try:
        enqueue_ingest(res.celery, job.path, full=job.full, run_id=str(job.id))
    except Exception as exc:  # the broker is unreachable: do not leave an orphan job
        log.exception("could not enqueue ingest job %s", job.id)
        fail_ingest_job(session, job.id, "the job could not be queued")
        session.commit()
        raise ServiceUnavailable("the job queue is unavailable; try again shortly") from exc
    response = jsonify(ingest_job_body(job))
    response.headers["Location"] = f"/v1/admin/ingest/{job.id}"
    response.headers["Retry-After"] = "1"
    return response, 202


@bp.get("/ingest", responses={200: IngestJobList, **_ERRORS})
@admin_required
def index(query: IngestListQuery) -> Response:
    """The most recent ingest jobs, newest first."""
    rows = list_ingest_jobs(db(), query.limit)
    return jsonify({"object": "list", "data": [ingest_job_body(row) for row in rows]})


@bp.get("/ingest/<job_id>", responses={200: IngestJobOut, 404: Problem, **_ERRORS})
@admin_required
def read(path: JobPath) -> Response:
    """An ingest job: status, counts, per-file failures and timings."""
    return jsonify(ingest_job_body(get_ingest_job(db(), path.job_id)))
