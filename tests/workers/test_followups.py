"""Model rewrites of follow-ups: through the real SDK and the simulator, cached per turn."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from bench.openai_sim import SimulatorHandle
from common.book.retrieval.guardrail import Vocabulary
from common.llm.factory import make_llm_client
from common.llm.metrics import CallStats
from common.llm.rewrite import REWRITE_PROMPT
from common.platform.redis_client import make_redis
from tests.support.stack import make_settings
from workers.followups import SearchQuery, cache_key, search_query, with_rewrite_usage

VOCABULARY = Vocabulary(["Gazebo is a robot simulator; launch it with a launch file."])
HISTORY = [("What is Gazebo?", "Gazebo is a robot simulator [1].")]


def rewrite_requests(sim: SimulatorHandle) -> list[dict[str, object]]:
    return [
        r
        for r in sim.log()
        if r["endpoint"] == "/v1/chat/completions"
        and REWRITE_PROMPT[:40] in str(r.get("messages", ""))
    ]


def test_a_follow_up_is_rewritten_once_per_turn(
    sim: SimulatorHandle, redis_url: str, tmp_path: Path
) -> None:
    settings = make_settings(
        tmp_path, redis_url, openai_api_key="sk-test", openai_base_url=f"{sim.url}/v1"
    )
    redis = make_redis(settings)
    llm = make_llm_client(settings, redis)
    job_id = uuid.uuid4()
    stats = CallStats()

    def ask() -> SearchQuery:
        return search_query(
            job_id, "How do I launch it?", HISTORY, VOCABULARY, stats, llm, "gpt-4o-mini", redis
        )

    first, again = ask(), ask()

    assert first.text == "How do I launch it (regarding: What is Gazebo)?"
    assert first.rewritten_by == "gpt-4o-mini"
    assert first.usage is not None and first.usage["total_tokens"] > 0
    assert again == first
    assert len(rewrite_requests(sim)) == 1 and stats.llm_calls == 1
    ttl: Any = redis.ttl(cache_key(job_id))
    assert ttl > 0


def test_a_question_that_stands_alone_costs_no_call(
    sim: SimulatorHandle, redis_url: str, tmp_path: Path
) -> None:
    settings = make_settings(
        tmp_path, redis_url, openai_api_key="sk-test", openai_base_url=f"{sim.url}/v1"
    )
    redis = make_redis(settings)
    llm = make_llm_client(settings, redis)
    question = "Which launch file starts the Gazebo robot simulator?"

    found = search_query(
        uuid.uuid4(), question, HISTORY, VOCABULARY, CallStats(), llm, "gpt-4o-mini", redis
    )

    assert found == SearchQuery(question)
    assert sim.log() == []


def test_rewrite_tokens_are_added_to_the_answers_usage() -> None:
    answer = {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
    rewrite = {"prompt_tokens": 30, "completion_tokens": 8, "total_tokens": 38}
    query = SearchQuery("q", "gpt-4o-mini", rewrite)

    assert with_rewrite_usage(answer, query) == {
        "prompt_tokens": 130,
        "completion_tokens": 28,
        "total_tokens": 158,
        "rewrite_tokens": 38,
    }
    assert with_rewrite_usage(answer, SearchQuery("q")) == answer
