"""A user's conversations and their messages: list, read, rename, delete."""

from __future__ import annotations

from flask import Response, jsonify
from flask_openapi3 import APIBlueprint, Tag

from common.jobs.conversations import (
    delete_conversation,
    forget_job_events,
    get_conversation,
    list_conversations,
    rename_conversation,
)
from common.jobs.feedback import feedback_by_job
from common.jobs.schemas import (
    ConversationDetail,
    ConversationList,
    ConversationOut,
    ConversationPath,
    ConversationRename,
)
from common.platform.api_types import ListQuery, Problem
from web.resources import db, resources
from web.security import BEARER, current_user_id, require_access_token
from web.serializers import conversation_body, conversation_detail_body

bp = APIBlueprint(
    "conversations",
    __name__,
    url_prefix="/v1/conversations",
    abp_tags=[Tag(name="conversations")],
    abp_security=BEARER,
)
# Authenticate before flask-openapi3 validates the body: signed-out callers get 401, not 422.
bp.before_request(require_access_token)


@bp.get(
    "", responses={200: ConversationList, 401: Problem, 404: Problem, 422: Problem, 503: Problem}
)
def index(query: ListQuery) -> Response:
    """The user's conversations, most recent first, paginated with `after`."""
    rows, has_more = list_conversations(db(), current_user_id(), query.limit, query.after)
    data = [conversation_body(row) for row in rows]
    return jsonify(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": has_more,
        }
    )


@bp.get(
    "/<uuid:conversation_id>",
    responses={200: ConversationDetail, 401: Problem, 404: Problem, 503: Problem},
)
def show(path: ConversationPath) -> Response:
    """One conversation with its messages."""
    conversation = get_conversation(db(), current_user_id(), path.conversation_id)
    ratings = feedback_by_job(db(), current_user_id(), (job.id for job in conversation.jobs))
    return jsonify(conversation_detail_body(conversation, ratings))


@bp.patch(
    "/<uuid:conversation_id>",
    responses={200: ConversationOut, 401: Problem, 404: Problem, 422: Problem, 503: Problem},
)
def rename(path: ConversationPath, body: ConversationRename) -> Response:
    """Give a conversation a new title."""
    conversation = rename_conversation(db(), current_user_id(), path.conversation_id, body.title)
    return jsonify(conversation_body(conversation))


@bp.delete(
    "/<uuid:conversation_id>", responses={204: None, 401: Problem, 404: Problem, 503: Problem}
)
def delete(path: ConversationPath) -> tuple[str, int]:
    """Delete a conversation with its messages."""
    job_ids = delete_conversation(db(), current_user_id(), path.conversation_id)
    db().commit()
    forget_job_events(resources().redis, job_ids)
    return "", 204
