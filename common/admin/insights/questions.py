"""The questions a report counts: one light row per chat job of the window and the one before."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.admin.insights.vectors import chat_questions
from common.platform.models import AnswerFeedback, AnswerLabel, ChatJob, QuestionVector

GAP_LABELS = frozenset((AnswerLabel.REFUSED.value, AnswerLabel.UNCERTAIN.value))


@dataclass(slots=True)
class Question:
    id: uuid.UUID
    created_at: datetime
    label: str | None
    message: str
    group: str
    current: bool  # in the report's window (else in the window before, for trends)
    up: int = 0
    down: int = 0
    pages: list[dict[str, Any]] = field(default_factory=list)  # cited pages, one per URL

    @property
    def is_gap(self) -> bool:
        """Refused, uncertain or rated down: the book failed this reader."""
        return self.label in GAP_LABELS or self.down > 0


def normalised(text: str) -> str:
    """Lower-case, single-spaced, without trailing punctuation: near-identical texts meet."""
    return " ".join(text.lower().split()).rstrip("?!. ")


def text_group(text: str) -> str:
    """The group of a question that has no vector: its normalised text."""
    return "t-" + hashlib.sha256(normalised(text).encode()).hexdigest()[:10]


def load_questions(
    session: Session, since: datetime, until: datetime, previous: datetime
) -> list[Question]:
    """Chat questions asked in [previous, until), with group, ratings and (current) citations."""
    rows = session.execute(
        select(
            ChatJob.id,
            ChatJob.created_at,
            ChatJob.label,
            ChatJob.message,
            QuestionVector.group_id,
        )
        .outerjoin(QuestionVector, QuestionVector.job_id == ChatJob.id)
        .where(chat_questions(previous, until))
        .order_by(ChatJob.created_at, ChatJob.id)
    )
    questions = [
        Question(job_id, at, label, message, group or text_group(message), at >= since)
        for job_id, at, label, message, group in rows
    ]
    by_id = {q.id: q for q in questions if q.current}
    _add_ratings(session, since, until, by_id)
    _add_citations(session, since, until, by_id)
    return questions


def _add_ratings(
    session: Session, since: datetime, until: datetime, by_id: dict[uuid.UUID, Question]
) -> None:
    rows = session.execute(
        select(AnswerFeedback.job_id, AnswerFeedback.rating)
        .join(ChatJob, ChatJob.id == AnswerFeedback.job_id)
        .where(chat_questions(since, until))
    )
    for job_id, rating in rows:
        if (question := by_id.get(job_id)) is not None:
            if rating == "up":
                question.up += 1
            elif rating == "down":
                question.down += 1


def _add_citations(
    session: Session, since: datetime, until: datetime, by_id: dict[uuid.UUID, Question]
) -> None:
    rows = session.execute(
        select(ChatJob.id, ChatJob.citations).where(chat_questions(since, until))
    )
    for job_id, citations in rows:
        question = by_id.get(job_id)
        if question is None or not citations:
            continue
        seen: dict[str, dict[str, Any]] = {}
        for citation in citations:
            if isinstance(citation, dict) and (url := citation.get("url")):
                seen.setdefault(url, citation)
        question.pages = [
            {"url": url, "title": c.get("title", ""), "source": c.get("source", "")}
            for url, c in seen.items()
        ]
