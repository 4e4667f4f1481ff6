"""Rows to API bodies."""

from __future__ import annotations

from typing import Any, cast

from common.jobs.job_endings import incomplete_details
from common.jobs.schemas import (
    ChatJobOut,
    ConversationDetail,
    ConversationOut,
    IngestJobOut,
    JobError,
    MessageOut,
)
from common.platform.models import ChatJob, Conversation, IngestJob


def chat_job_body(job: ChatJob) -> dict[str, Any]:
    """The public view of a chat job."""
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
        created_at=job.created_at,
        started_at=job.started_at,
        completed_at=job.completed_at,
    ).model_dump(mode="json")


def conversation_body(conversation: Conversation) -> dict[str, Any]:
    """A conversation without its messages."""
    return ConversationOut.model_validate(conversation, from_attributes=True).model_dump(
        mode="json"
    )


def conversation_detail_body(conversation: Conversation) -> dict[str, Any]:
    """A conversation with its messages: each job is a user turn and an assistant turn."""
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
