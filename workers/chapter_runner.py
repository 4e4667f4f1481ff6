"""Rewriting one chapter (personalize or translate) inside a chat job's attempt.

`workers/chat.py` claims the row, runs the attempt and records the outcome as for a chat
answer; this module only produces the text: read the chapter, mask its markup, stream the
model's rewrite with placeholders restored on the fly, and check that every piece survived.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.orm import Session

from common.chapter_jobs import (
    PERSONALIZE,
    chapter_cache_key,
    find_chapter,
    record_chapter_variant,
)
from common.chapters import MarkupLost, StreamRestorer, protect, restore
from common.db import run_unit
from common.errors import ChapterNotFound
from common.llm.base import Answer, DeltaSink, incomplete_reason
from common.llm.chapter_prompts import personalize_messages, translate_messages
from common.llm.errors import LLMError
from common.llm.metrics import CallStats
from common.llm.personalize import profile_guidance
from common.profiles import get_profile, profile_hash
from common.tokens import admission_tokens
from workers.resources import WorkerResources

T = TypeVar("T")
# Room for the rewrite: Urdu takes more tokens than English; gpt-4o-mini stops at 16k.
OUTPUT_TOKENS_PER_INPUT = 3
MIN_OUTPUT_TOKENS = 1024
MAX_OUTPUT_TOKENS = 16_000


@dataclass(frozen=True)
class ChapterTask:
    """What a claimed chapter job asks for."""

    job_id: uuid.UUID
    user_id: uuid.UUID | None
    task: str
    source: str
    language: str | None
    attempt: int


class ChapterFailed(LLMError):
    """The chapter cannot be rewritten: the job fails with this code (not retried)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message, retryable=False)


def output_budget(protected_text: str) -> int:
    """The max_tokens of a rewrite of this text."""
    wanted = OUTPUT_TOKENS_PER_INPUT * admission_tokens(protected_text)
    return max(MIN_OUTPUT_TOKENS, min(MAX_OUTPUT_TOKENS, wanted))


def rewrite_chapter(
    res: WorkerResources,
    job: ChapterTask,
    on_delta: DeltaSink,
    stats: CallStats,
    on_restart: Callable[[], None],
) -> Answer:
    """The chapter rewritten or translated, with its markup restored; ChapterFailed if not."""
    settings = res.settings
    if res.llm is None:
        raise ChapterFailed("model_not_configured", "chapter jobs need OPENAI_API_KEY")
    try:
        chapter = find_chapter(settings, job.source, None)
    except ChapterNotFound as exc:
        raise ChapterFailed("chapter_not_found", exc.detail) from exc
    protected = protect(chapter.markdown)
    applied: list[str] | None = None
    if job.task == PERSONALIZE:
        # The profile as it is now: the row is cached under what produced it.
        owner = job.user_id
        profile = _record(res, lambda s: get_profile(s, owner)) if owner else None
        guidance = profile_guidance(profile)
        applied = list(guidance.applied)
        messages = personalize_messages(protected.text, guidance.lines)
        variant = profile_hash(profile)
    else:
        messages = translate_messages(protected.text, job.language or "ur")
        variant = job.language or ""
    key = chapter_cache_key(settings, job.task, chapter, variant)
    _record(res, lambda s: record_chapter_variant(s, job.job_id, job.attempt, key, applied))

    restorer = [StreamRestorer(protected.table)]

    def restored_delta(text: str) -> None:
        if out := restorer[0].feed(text):
            on_delta(out)

    def restart() -> None:
        restorer[0] = StreamRestorer(protected.table)
        on_restart()

    completion = res.llm.stream_chat(
        settings.chat_model,
        messages,
        output_budget(protected.text),
        restored_delta,
        restart,
        stats,
        ticket=str(job.job_id),
    )
    if tail := restorer[0].flush():
        on_delta(tail)
    try:
        text = restore(completion.text, protected.table)
    except MarkupLost as exc:
        raise ChapterFailed("chapter_markup_lost", str(exc)) from exc
    usage = {
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "total_tokens": completion.prompt_tokens + completion.completion_tokens,
    }
    reason = incomplete_reason(completion.finish_reason)
    return Answer(text=text, model=completion.model, usage=usage, incomplete_reason=reason)


def _record(res: WorkerResources, write: Callable[[Session], T]) -> T:
    return run_unit(res.sessions, write, res.retry_policy.outage_bound_s)
