"""The search query of a chat turn: the question, or its standalone rewrite, cached per turn."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from common.book.retrieval.followups import is_follow_up, standalone_question
from common.book.retrieval.guardrail import Vocabulary
from common.llm.client import LLMClient
from common.llm.metrics import CallStats
from common.llm.rewrite import rewrite_with_model, standalone_text

log = logging.getLogger(__name__)
CACHE_SECONDS = 86_400  # a turn is re-run within minutes (re-queues, the watchdog), not days


@dataclass(frozen=True)
class SearchQuery:
    text: str
    rewritten_by: str | None = None  # "offline", or the model that rewrote the follow-up
    usage: dict[str, int] | None = None  # the model rewrite's tokens, counted in the job's


def cache_key(job_id: uuid.UUID) -> str:
    """Where a turn's model rewrite is kept, so a re-run does not pay for it again."""
    return f"bookchat:chat:{job_id}:search_query"


def search_query(
    job_id: uuid.UUID,
    question: str,
    history: Sequence[tuple[str, str]],
    vocabulary: Vocabulary,
    stats: CallStats,
    llm: LLMClient | None = None,
    model: str = "",
    cache: redis.Redis | None = None,
) -> SearchQuery:
    """The question to search with: a follow-up made standalone, any other question as asked."""
    if not history or not is_follow_up(question, vocabulary):
        return SearchQuery(question)
    offline = standalone_question(question, history, vocabulary)
    if llm is None:
        return SearchQuery(offline, "offline")
    cached: Any = cache.get(cache_key(job_id)) if cache is not None else None
    if cached is not None:
        return SearchQuery(**json.loads(cached))
    completion = rewrite_with_model(llm, model, question, history, stats, str(job_id))
    usage = {
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "total_tokens": completion.prompt_tokens + completion.completion_tokens,
    }
    found = SearchQuery(standalone_text(completion.text) or offline, completion.model, usage)
    if cache is not None:
        try:
            cache.set(cache_key(job_id), json.dumps(found.__dict__), ex=CACHE_SECONDS)
        except redis.RedisError:  # the call is paid for; losing the cache only costs a re-ask
            log.warning("could not cache the search query of chat job %s", job_id)
    return found


def with_rewrite_usage(usage: dict[str, Any] | None, query: SearchQuery) -> dict[str, Any] | None:
    """The answer's usage plus the rewrite's tokens (also shown apart as `rewrite_tokens`)."""
    if not query.usage:
        return usage
    merged = dict(usage or {})
    for key, value in query.usage.items():
        merged[key] = int(merged.get(key) or 0) + value
    merged["rewrite_tokens"] = query.usage["total_tokens"]
    return merged
