"""Fixtures of the LLM layer's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client of the shared test Redis (database 0); tests keep apart by unique key names."""
    connection = redis.Redis.from_url(redis_url, decode_responses=True)
    yield connection
    connection.close()
