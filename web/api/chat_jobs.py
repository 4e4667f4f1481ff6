"""Chat jobs: submit, read (with long-poll), stream events, cancel."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

from flask import Response, abort, current_app, jsonify, request, stream_with_context
from flask_openapi3 import APIBlueprint, Tag
from flask_openapi3.types import ResponseDict
from pydantic import ValidationError
from redis import Redis, RedisError

from common.accounts.quotas import Spender, reserves_tokens, spender_of
from common.accounts.token_reservations import Reservation, release_tokens
from common.book.token_estimates import estimate_answer_tokens
from common.jobs.admission import Admission
from common.jobs.chat_jobs import cancel_chat_job, get_chat_job, queue_chat_job
from common.jobs.feedback import feedback_of_job
from common.jobs.schemas import ChatJobCreate, ChatJobOut, JobPath, WaitQuery
from common.platform.after_commit import commit
from common.platform.api_types import IdempotencyHeader, Problem
from common.platform.db import session_scope
from common.platform.models import JobStatus
from common.platform.observability import tracked_stream
from common.platform.settings import Settings
from web.hangup import HangUpWatch
from web.job_events import StreamReader, job_event_stream, resume_point, wait_for_job
from web.problems import REDIS_ERRORS, validation_problem
from web.rate_limits import client_address
from web.resources import db, resources
from web.security import BEARER, current_account, current_user_id, require_access_token
from web.serializers import chat_job_body
from web.stream_slots import Slot, StreamSlots, stream_scopes

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
_ERRORS: ResponseDict = {401: Problem, 404: Problem, 422: Problem, 503: Problem}
IDEMPOTENCY_HEADER = "Idempotency-Key"


# The header is read by hand: flask-openapi3 rebuilds a header model's JSON schema on every
# request (~0.7 ms of CPU, most of a trivial request), so the model only documents it here.
IDEMPOTENCY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Replays the first job made with this key (same body) instead of a new one",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}


def idempotency_key() -> str | None:
    """The request's Idempotency-Key, validated by IdempotencyHeader (422 when invalid)."""
    raw = request.headers.get(IDEMPOTENCY_HEADER)
    if raw is None:
        return None
    try:
        return IdempotencyHeader.model_validate({IDEMPOTENCY_HEADER: raw}).idempotency_key
    except ValidationError as exc:
        abort(validation_problem(exc))


def _admission() -> Admission:
    app = current_app
    admission: Admission | None = app.extensions.get("bookchat.admission")
    if admission is None:
        admission = app.extensions.setdefault("bookchat.admission", Admission(resources().settings))
    return admission


def _take_stream_slot(job_id: uuid.UUID) -> Slot:
    """A slot for one stream or long-poll on the job (429 `too_many_streams` past a share)."""
    app, res = current_app, resources()
    slots: StreamSlots | None = app.extensions.get("bookchat.stream_slots")
    if slots is None:
        made = StreamSlots(res.redis, res.settings.stream_slot_ttl_seconds)
        slots = app.extensions.setdefault("bookchat.stream_slots", made)
    scopes = stream_scopes(
        res.settings, current_user_id(), current_account().role, job_id, client_address()
    )
    return slots.acquire(scopes)


def current_spender(settings: Settings) -> Spender:
    """Whose daily quotas the signed-in caller's model tokens count against."""
    user = current_account()
    return spender_of(settings, user.id, user.role, user.email, user.external_id, client_address())


def answer_reservation(
    client: Redis, body: ChatJobCreate, settings: Settings
) -> Reservation | None:
    """The tokens a question reserves on the caller's quotas and the daily budget (None: off)."""
    if not reserves_tokens(settings, current_account().role):
        return None
    tokens = estimate_answer_tokens(
        body.message,
        body.selected_text,
        follow_up=body.conversation_id is not None,
        passages=settings.retrieval_k,
        history_turns=settings.history_turns,
        max_output_tokens=settings.chat_max_tokens,
    )
    return Reservation(client, current_spender(settings), tokens, settings)


@bp.post(
    "",
    responses={202: ChatJobOut, 400: Problem, 429: Problem, **_ERRORS},
    openapi_extensions={"parameters": [IDEMPOTENCY_PARAMETER]},
)
def submit(body: ChatJobCreate) -> tuple[Response, int]:
    """Queue a question; poll the Location or stream its events.

    429 `token_quota_exceeded` when the caller's daily quota cannot hold the question's
    estimate; 503 `overloaded` when the queue is full, `budget_exhausted` when the service
    has spent its daily model budget (Retry-After: until the UTC day rolls over).
    """
    res, session, key = resources(), db(), idempotency_key()
    _admission().check(session, res.redis)
    reservation = answer_reservation(res.redis, body, res.settings)
    job, replayed = queue_chat_job(
        session, res.celery, res.events, current_user_id(), body, key, reservation
    )
    # The body first: the row was written from these values, and the commit would expire them
    # (a reload query for nothing).
    response = jsonify(chat_job_body(job))
    commit(session)  # the job's id is sent now, or the job is failed and this is a 503
    response.headers["Location"] = f"/v1/chat/jobs/{job.id}"
    response.headers["Retry-After"] = "1"
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response, 202


@bp.get("/<uuid:job_id>", responses={200: ChatJobOut, 429: Problem, **_ERRORS})
def read(path: JobPath, query: WaitQuery) -> Response:
    """The job; `?wait=N` holds the request until it finishes or N seconds pass."""
    session = db()
    job = get_chat_job(session, current_user_id(), path.job_id)
    if query.wait > 0 and not job.job_status.is_terminal:
        job_id = job.id  # read before the rollback expires it: a reload would hold a connection
        slot = _take_stream_slot(job_id)
        session.rollback()  # release the connection while we wait
        try:
            wait_for_job(resources().hub, job_id, query.wait)
        except REDIS_ERRORS:
            # Nothing to wait on without Redis: a finished row is still an answer, else 503.
            session.refresh(job)
            if not job.job_status.is_terminal:
                raise
        finally:
            slot.release()
        job = get_chat_job(session, current_user_id(), path.job_id)
        session.refresh(job)
    return jsonify(chat_job_body(job, feedback_of_job(session, job)))


@bp.get("/<uuid:job_id>/events", responses={400: Problem, 429: Problem, **_ERRORS})
def events(path: JobPath) -> Response:
    """Server-Sent Events for the job; send Last-Event-ID to resume."""
    after = resume_point(request.headers.get("Last-Event-ID"), request.args.get("starting_after"))
    session = db()
    job = get_chat_job(session, current_user_id(), path.job_id)
    job_id, snapshot = job.id, chat_job_body(job, feedback_of_job(session, job))
    slot = _take_stream_slot(job_id)
    session.rollback()  # `job` is expired now: only job_id and the snapshot are used below
    user_id, res = current_user_id(), resources()
    reader = StreamReader(res.settings.stream_ping_seconds, slot, HangUpWatch(request.environ))

    def reload() -> dict[str, Any]:
        with session_scope(res.sessions) as fresh:
            job = get_chat_job(fresh, user_id, job_id)
            return chat_job_body(job, feedback_of_job(fresh, job))

    def close() -> None:
        # Also when the body is never read: the server closes every response it was given.
        if reader.hangup is not None:
            reader.hangup.close()
        slot.release()

    def frames() -> Iterator[str]:
        # The slot is given back as the stream ends, before the open-streams gauge counts it
        # closed: a client that sees the gauge drop may open another stream at once.
        try:
            yield from job_event_stream(
                res.events, res.hub, job_id, after, snapshot, reload, reader
            )
        finally:
            close()

    try:
        response = Response(
            stream_with_context(tracked_stream(frames())),
            mimetype="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    except BaseException:
        close()
        raise
    response.call_on_close(close)
    return response


@bp.post("/<uuid:job_id>/cancel", responses={200: ChatJobOut, 409: Problem, **_ERRORS})
def cancel(path: JobPath) -> Response:
    """Cancel a queued or running job."""
    session, res = db(), resources()
    before = get_chat_job(session, current_user_id(), path.job_id).job_status
    job = cancel_chat_job(session, current_user_id(), path.job_id)
    session.commit()
    if not before.is_terminal:
        try:
            if before == JobStatus.QUEUED:  # no model call yet; a running job's worker settles
                release_tokens(res.redis, job.id)
            res.events.request_cancel(job.id)
            res.events.publish(job.id, "done", {"status": JobStatus.CANCELLED.value})
        except RedisError:
            log.warning("could not publish cancellation of %s", job.id, exc_info=True)
    return jsonify(chat_job_body(job))
