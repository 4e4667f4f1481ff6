"""Rewriting one chapter (personalize or translate) inside a chat job's attempt.

`workers/chat.py` claims the row, runs the attempt and records the outcome as for a chat
answer (`workers/outcomes.py`); this module only produces the text: read the chapter, mask its
markup, stream the model's rewrite with placeholders restored on the fly, and check that every
piece survived.
"""

from __future__ import annotations

from common.accounts.profiles import get_profile, profile_hash
from common.book.chapters import MarkupLost, Protected, StreamRestorer, protect, restore
from common.book.token_estimates import admission_tokens
from common.jobs.chapter_jobs import (
    PERSONALIZE,
    Chapter,
    chapter_cache_key,
    find_chapter,
    record_chapter_variant,
)
from common.llm.base import Answer, incomplete_reason
from common.llm.chapter_prompts import personalize_messages, translate_messages
from common.llm.client import Completion, LLMClient
from common.llm.errors import LLMError
from common.llm.personalize import profile_guidance
from common.platform.errors import ChapterNotFound
from workers.attempts import Attempt

# Room for the rewrite: Urdu takes more tokens than English; gpt-4o-mini stops at 16k.
OUTPUT_TOKENS_PER_INPUT = 3
MIN_OUTPUT_TOKENS = 1024
MAX_OUTPUT_TOKENS = 16_000


class ChapterFailed(LLMError):
    """The chapter cannot be rewritten: the job fails with this code (not retried)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message, retryable=False)


def output_budget(protected_text: str) -> int:
    """The max_tokens of a rewrite of this text."""
    wanted = OUTPUT_TOKENS_PER_INPUT * admission_tokens(protected_text)
    return max(MIN_OUTPUT_TOKENS, min(MAX_OUTPUT_TOKENS, wanted))


def rewrite_chapter(attempt: Attempt) -> Answer:
    """The chapter rewritten or translated, with its markup restored; ChapterFailed if not."""
    res, job = attempt.res, attempt.job
    if res.llm is None:
        raise ChapterFailed("model_not_configured", "chapter jobs need OPENAI_API_KEY")
    try:
        chapter = find_chapter(res.settings, job.message, None)
    except ChapterNotFound as exc:
        raise ChapterFailed("chapter_not_found", exc.detail) from exc
    protected = protect(chapter.markdown)
    messages = _prompt(attempt, chapter, protected.text)
    completion = _stream_rewrite(attempt, res.llm, messages, protected)
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


def _prompt(attempt: Attempt, chapter: Chapter, protected_text: str) -> list[dict[str, str]]:
    """The rewrite's messages; records which cached variant the job will produce."""
    job = attempt.job
    applied: list[str] | None = None
    if job.task == PERSONALIZE:
        # The profile as it is now: the row is cached under what produced it.
        owner = job.owner
        profile = attempt.record(lambda s: get_profile(s, owner)) if owner else None
        guidance = profile_guidance(profile)
        applied = list(guidance.applied)
        messages = personalize_messages(protected_text, guidance.lines)
        variant = profile_hash(profile)
    else:
        messages = translate_messages(protected_text, job.language or "ur")
        variant = job.language or ""
    key = chapter_cache_key(attempt.res.settings, job.task, chapter, variant)
    attempt.record(lambda s: record_chapter_variant(s, job.id, job.attempt, key, applied))
    return messages


def _stream_rewrite(
    attempt: Attempt, llm: LLMClient, messages: list[dict[str, str]], protected: Protected
) -> Completion:
    """Stream the model's rewrite with the markup restored in each delta."""
    restorer = [StreamRestorer(protected.table)]

    def restored_delta(text: str) -> None:
        if out := restorer[0].feed(text):
            attempt.on_delta(out)

    def restart() -> None:
        restorer[0] = StreamRestorer(protected.table)
        attempt.on_restart()

    completion = llm.stream_chat(
        attempt.res.settings.chat_model,
        messages,
        output_budget(protected.text),
        restored_delta,
        restart,
        attempt.stats,
        ticket=str(attempt.job.id),
    )
    if tail := restorer[0].flush():
        attempt.on_delta(tail)
    return completion
