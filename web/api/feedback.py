"""Readers rate their answers: thumbs up or down, a reason and a comment; one per job."""

from __future__ import annotations

from flask import Response, jsonify
from flask_openapi3 import APIBlueprint, Tag
from flask_openapi3.types import ResponseDict

from common.jobs.feedback import rate_answer, withdraw_feedback
from common.jobs.schemas import FeedbackIn, FeedbackOut, JobPath
from common.platform.api_types import Problem
from web.resources import db
from web.security import BEARER, current_user_id, require_access_token
from web.serializers import feedback_body

bp = APIBlueprint(
    "answer_feedback",
    __name__,
    url_prefix="/v1/chat/jobs",
    abp_tags=[Tag(name="feedback")],
    abp_security=BEARER,
)
# Authenticate before flask-openapi3 validates the body: signed-out callers get 401, not 422.
bp.before_request(require_access_token)
_ERRORS: ResponseDict = {401: Problem, 404: Problem, 422: Problem, 429: Problem, 503: Problem}


@bp.post(
    "/<uuid:job_id>/feedback",
    responses={200: FeedbackOut, 201: FeedbackOut, 400: Problem, 409: Problem, **_ERRORS},
)
def rate(path: JobPath, body: FeedbackIn) -> tuple[Response, int]:
    """Rate your finished answer (201); rating it again replaces the rating (200).

    `reason` goes only with `"down"`; 409 `job_not_rateable` until the answer is finished
    (`completed` or `incomplete`).
    """
    session = db()
    feedback, created = rate_answer(session, current_user_id(), path.job_id, body)
    response = jsonify(feedback_body(feedback))
    session.commit()
    return response, 201 if created else 200


@bp.delete("/<uuid:job_id>/feedback", responses={204: None, **_ERRORS})
def withdraw(path: JobPath) -> tuple[str, int]:
    """Withdraw your rating of the answer (204 whether or not there was one)."""
    session = db()
    withdraw_feedback(session, current_user_id(), path.job_id)
    session.commit()
    return "", 204
