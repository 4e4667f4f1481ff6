"""Rows to API bodies."""

from __future__ import annotations

import uuid
from typing import Any, cast

from common.jobs.job_endings import incomplete_details
from common.jobs.schemas import (
    ChatJobOut,
    ConversationDetail,
    ConversationOut,
    FeedbackOut,
    IngestJobOut,
    JobError,
    MessageOut,
)
from common.platform.models import AnswerFeedback, ChatJob, Conversation, IngestJob


def feedback_out(feedback: AnswerFeedback | None) -> FeedbackOut | None:
    """A rating as the API shows it."""
    if feedback is None:
        return None
    return FeedbackOut(
        rating=cast(Any, feedback.rating),
        reason=cast(Any, feedback.reason),
        comment=feedback.comment,
        created_at=feedback.created_at,
        updated_at=feedback.updated_at,
    )


def feedback_body(feedback: AnswerFeedback) -> dict[str, Any]:
    """A rating as a response body."""
    out = feedback_out(feedback)
    assert out is not None
    return out.model_dump(mode="json")


def chat_job_body(job: ChatJob, feedback: AnswerFeedback | None = None) -> dict[str, Any]:
    """The public view of a chat job, with the reader's rating when the caller read it."""
    error = None
    if job.error_code:
        error = JobError(code=job.error_code, message=job.error_message or job.error_code)
    return ChatJobOut(
        id=job.id,
        status=job.job_status.value,
        task=cast(Any, job.task),
        conversation_id=job.conversation_id,
        message=job.message,
        selected_text=job.selected_text,
        page_url=job.page_url,
        answer=job.answer,
        citations=job.citations or [],
        sources=job.sources or [],
        incomplete_details=cast(Any, incomplete_details(job.incomplete_reason)),
        model=job.model,
        usage=job.usage,
        error=error,
        attempts=job.attempts,
        waits=job.waits,
        metrics=job.metrics,
        profile_applied=job.profile_applied,
        language=job.language,
        label=cast(Any, job.label),
        feedback=feedback_out(feedback),
        cached=job.cached_from_job_id is not None,
        cached_from=job.cached_from_job_id,
        created_at=job.created_at,
        started_at=job.started_at,
        completed_at=job.completed_at,
    ).model_dump(mode="json")


def conversation_body(conversation: Conversation) -> dict[str, Any]:
    """A conversation without its messages."""
    return ConversationOut.model_validate(conversation, from_attributes=True).model_dump(
        mode="json"
    )


def conversation_detail_body(
    conversation: Conversation, feedback: dict[uuid.UUID, AnswerFeedback] | None = None
) -> dict[str, Any]:
    """A conversation with its messages: each job is a user turn and an assistant turn.

    An assistant turn carries the reader's rating of it from `feedback` (by job id).
    """
    ratings = feedback or {}
    messages: list[MessageOut] = []
    for job in conversation.jobs:
        messages.append(
            MessageOut(
                role="user",
                content=job.message,
                job_id=job.id,
                status=job.status,
                created_at=job.created_at,
            )
        )
        messages.append(
            MessageOut(
                role="assistant",
                content=job.answer,
                job_id=job.id,
                status=job.status,
                citations=job.citations or [],
                feedback=feedback_out(ratings.get(job.id)),
                created_at=job.completed_at or job.created_at,
            )
        )
    return ConversationDetail(
        id=conversation.id,
        title=conversation.title,
        created_at=conversation.created_at,
        updated_at=conversation.updated_at,
        messages=messages,
    ).model_dump(mode="json")


def ingest_job_body(job: IngestJob) -> dict[str, Any]:
    """The public view of an ingest job."""
    return IngestJobOut.model_validate(job, from_attributes=True).model_dump(mode="json")
