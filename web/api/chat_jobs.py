"""Chat jobs: submit, read (with long-poll), stream events, cancel."""

from __future__ import annotations

import logging
import uuid

from flask import Response, jsonify, request, stream_with_context
from flask_openapi3 import APIBlueprint, Tag
from flask_openapi3.types import ResponseDict
from redis import RedisError

from common.chat_jobs import (
    cancel_chat_job,
    fail_queued_chat_job,
    get_chat_job,
    submit_chat_job,
)
from common.errors import ServiceUnavailable
from common.models import JobStatus
from common.queue import enqueue_chat_job
from common.schemas import ChatJobCreate, ChatJobOut, IdempotencyHeader, JobPath, Problem, WaitQuery
from web.job_events import job_event_stream, wait_for_job
from web.resources import db, resources
from web.security import BEARER, current_user_id, require_access_token
from web.serializers import chat_job_body

log = logging.getLogger(__name__)
bp = APIBlueprint(
    "chat_jobs",
    __name__,
    url_prefix="/v1/chat/jobs",
    abp_tags=[Tag(name="chat jobs")],
    abp_security=BEARER,
)
# Authenticate before flask-openapi3 validates the body: signed-out callers get 401, not 422.
bp.before_request(require_access_token)
_ERRORS: ResponseDict = {401: Problem, 404: Problem, 422: Problem}


@bp.post("", responses={202: ChatJobOut, 400: Problem, 503: Problem, **_ERRORS})
def submit(body: ChatJobCreate, header: IdempotencyHeader) -> tuple[Response, int]:
    """Queue a question; poll the Location or stream its events."""
    session, res = db(), resources()
    job, replayed = submit_chat_job(session, current_user_id(), body, header.idempotency_key)
    session.commit()
    if not replayed:
        try:
            enqueue_chat_job(res.celery, job.id)
        except Exception as exc:  # the broker is unreachable: do not leave an orphan job
            log.exception("could not enqueue chat job %s", job.id)
            fail_queued_chat_job(
                session, job.id, "queue_unavailable", "the job could not be queued"
            )
            session.commit()
            raise ServiceUnavailable("the job queue is unavailable; try again shortly") from exc
        _publish_queued(job.id)
    response = jsonify(chat_job_body(job))
    response.headers["Location"] = f"/v1/chat/jobs/{job.id}"
    response.headers["Retry-After"] = "1"
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response, 202


def _publish_queued(job_id: uuid.UUID) -> None:
    try:
        resources().events.publish(job_id, "status", {"status": JobStatus.QUEUED.value})
    except RedisError:
        log.warning("could not publish the queued event of %s", job_id, exc_info=True)


@bp.get("/<job_id>", responses={200: ChatJobOut, **_ERRORS})
def read(path: JobPath, query: WaitQuery) -> Response:
    """The job; `?wait=N` holds the request until it finishes or N seconds pass."""
    session = db()
    job = get_chat_job(session, current_user_id(), path.job_id)
    if query.wait > 0 and not job.job_status.is_terminal:
        session.rollback()  # release the connection while we wait
        wait_for_job(resources().events, job.id, query.wait)
        job = get_chat_job(session, current_user_id(), path.job_id)
        session.refresh(job)
    return jsonify(chat_job_body(job))


@bp.get("/<job_id>/events", responses={404: Problem, 401: Problem, 422: Problem})
def events(path: JobPath) -> Response:
    """Server-Sent Events for the job; send Last-Event-ID to resume."""
    session = db()
    job = get_chat_job(session, current_user_id(), path.job_id)
    after = request.headers.get("Last-Event-ID") or request.args.get("starting_after") or "0-0"
    snapshot = chat_job_body(job)
    session.rollback()
    stream = job_event_stream(resources().events, job.id, after, snapshot)
    return Response(
        stream_with_context(stream),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@bp.post("/<job_id>/cancel", responses={200: ChatJobOut, 409: Problem, **_ERRORS})
def cancel(path: JobPath) -> Response:
    """Cancel a queued or running job."""
    session, res = db(), resources()
    was_active = not get_chat_job(session, current_user_id(), path.job_id).job_status.is_terminal
    job = cancel_chat_job(session, current_user_id(), path.job_id)
    session.commit()
    if was_active:
        try:
            res.events.request_cancel(job.id)
            res.events.publish(job.id, "done", {"status": JobStatus.CANCELLED.value})
        except RedisError:
            log.warning("could not publish cancellation of %s", job.id, exc_info=True)
    return jsonify(chat_job_body(job))
