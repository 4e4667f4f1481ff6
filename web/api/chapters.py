"""Chapter jobs: rewrite a chapter for the reader's profile, or translate it to Urdu.

Both answer 200 with a completed job when the result is cached, else 202 with a queued job
to read, stream or cancel at `/v1/chat/jobs/<id>` like a chat job.
"""

from __future__ import annotations

from flask import Response, jsonify, request
from flask_openapi3 import APIBlueprint, Tag
from flask_openapi3.types import ResponseDict

from common.accounts.quotas import check_spend
from common.jobs.chapter_jobs import PERSONALIZE, TRANSLATE, queue_chapter_job
from common.jobs.chapter_schemas import ChapterRequest, ChapterTranslateRequest
from common.jobs.schemas import ChatJobOut
from common.platform.after_commit import commit
from common.platform.api_types import Problem
from common.platform.models import JobStatus
from web.api.chat_jobs import IDEMPOTENCY_PARAMETER, current_spender, idempotency_key
from web.resources import db, resources
from web.security import (
    BEARER,
    current_user_id,
    require_access_token,
    require_user,
)
from web.serializers import chat_job_body

bp = APIBlueprint(
    "chapters",
    __name__,
    url_prefix="/v1/chapters",
    abp_tags=[Tag(name="chapters")],
    abp_security=BEARER,
)
_RESPONSES: ResponseDict = {
    200: ChatJobOut,
    202: ChatJobOut,
    401: Problem,
    404: Problem,
    422: Problem,
    429: Problem,
    503: Problem,
}
_EXTRA = {"parameters": [IDEMPOTENCY_PARAMETER]}


def _submit(task: str, body: ChapterRequest) -> tuple[Response, int]:
    res, session, key = resources(), db(), idempotency_key()
    user_id = current_user_id()
    check_spend(res.redis, current_spender(res.settings), res.settings)
    job = queue_chapter_job(session, res.settings, res.celery, res.events, user_id, task, body, key)
    commit(session)  # the job's id is sent now, or the job is failed and this is a 503
    response = jsonify(chat_job_body(job))
    response.headers["Location"] = f"/v1/chat/jobs/{job.id}"
    if job.status == JobStatus.COMPLETED.value:
        return response, 200
    response.headers["Retry-After"] = "1"
    return response, 202


@bp.post(
    "/personalize", responses={**_RESPONSES, 403: Problem, 409: Problem}, openapi_extensions=_EXTRA
)
def personalize(body: ChapterRequest) -> tuple[Response, int]:
    """Rewrite a chapter for your saved profile (not for guests; 409 without a profile)."""
    return _submit(PERSONALIZE, body)


@bp.post("/translate", responses=_RESPONSES, openapi_extensions=_EXTRA)
def translate(body: ChapterTranslateRequest) -> tuple[Response, int]:
    """Translate a chapter to Urdu, keeping code, commands, links and heading anchors."""
    return _submit(TRANSLATE, body)


def _authorize() -> None:
    # Before flask-openapi3 validates the body: the signed-out get 401 and guests 403, not 422.
    # Guests may translate (one cached result per chapter serves everyone); personalizing
    # needs a saved profile, which guests cannot have.
    if request.endpoint == "chapters.personalize":
        require_user()
    else:
        require_access_token()


bp.before_request(_authorize)
