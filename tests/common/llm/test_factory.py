"""Building the LLM layer from settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from common.llm.factory import make_llm_client, model_limits
from common.llm.limiter import Limits
from common.platform.settings import Settings
from tests.support.stack import make_settings


@pytest.fixture
def settings(tmp_path: Path, redis_url: str) -> Settings:
    """Settings with distinct chat and embedding limits."""
    return make_settings(
        tmp_path,
        redis_url,
        openai_api_key="sk-test",
        openai_base_url="http://127.0.0.1:9/v1",
        llm_rpm=500,
        llm_tpm=200_000,
        embedding_rpm=3000,
        embedding_tpm=1_000_000,
        llm_burst_seconds=4.0,
        llm_headroom=0.9,
        llm_max_wait_in_process_seconds=1.5,
    )


@pytest.fixture
def connection(redis_url: str) -> Iterator[redis.Redis]:
    """A client of the shared test Redis."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


def test_each_model_gets_its_own_account_limits(settings: Settings) -> None:
    assert model_limits(settings, settings.chat_model) == Limits(500, 200_000, 4.0, 0.9)
    assert model_limits(settings, "gpt-4.1-nano") == Limits(500, 200_000, 4.0, 0.9)
    assert model_limits(settings, settings.embedding_model) == Limits(3000, 1_000_000, 4.0, 0.9)


def test_the_client_reuses_one_limiter_per_model(
    settings: Settings, connection: redis.Redis
) -> None:
    client = make_llm_client(settings, connection)

    chat = client.limiters(settings.chat_model)

    assert client.limiters(settings.chat_model) is chat
    assert client.limiters(settings.embedding_model) is not chat
    assert client.limiters(settings.embedding_model).limits.rpm == 3000
    assert client.policy.max_wait_in_process_s == 1.5
    assert client.sdk.max_retries == 0
