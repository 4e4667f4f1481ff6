"""The answer cache's Redis store: nearest entries within a bucket, the bound, the cap."""

from __future__ import annotations

import uuid
from typing import Any

import redis

from common.accounts.profiles import ReaderProfileIn
from workers.answer_cache import AnswerCache, bucket_key, bump_index_version, index_version


def unit(*values: float) -> list[float]:
    norm = sum(v * v for v in values) ** 0.5
    return [v / norm for v in values]


def test_the_nearest_entries_of_the_same_bucket_only(private_redis_url: str) -> None:
    client = redis.Redis.from_url(private_redis_url, decode_responses=True)
    cache = AnswerCache(client, ttl_seconds=60, max_entries=3)
    key = bucket_key(1, "textbook__v1", None, None, None, "gpt-4o-mini", "minilm")
    near, far, elsewhere = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    cache.store(key, near, unit(1.0, 0.1, 0.0))
    cache.store(key, far, unit(0.0, 1.0, 0.0))
    profiled = bucket_key(1, "textbook__v1", None, None, ReaderProfileIn(), "gpt-4o-mini", "x")
    cache.store(profiled, elsewhere, unit(1.0, 0.0, 0.0))

    found = cache.nearest(key, unit(1.0, 0.0, 0.0), min_similarity=0.9)

    assert [job for job, _ in found] == [near]
    assert found[0][1] > 0.99
    assert cache.nearest(key, unit(1.0, 0.0, 0.0), min_similarity=0.999) == []
    cache.forget(key, near)
    assert cache.nearest(key, unit(1.0, 0.0, 0.0), min_similarity=0.5) == []
    ttl: Any = client.ttl(key.redis_key() + ":log")
    assert 0 < ttl <= 60


def test_a_full_bucket_takes_no_more(private_redis_url: str) -> None:
    client = redis.Redis.from_url(private_redis_url, decode_responses=True)
    cache = AnswerCache(client, ttl_seconds=60, max_entries=2)
    key = bucket_key(0, "", "selected", "/page", None, "extractive", "minilm")
    for _ in range(3):
        cache.store(key, uuid.uuid4(), unit(1.0, 0.0))
    assert client.llen(key.redis_key() + ":log") == 2
    assert len(cache.nearest(key, unit(1.0, 0.0), min_similarity=0.5)) == 2


def test_every_process_sees_what_another_stored_or_dropped(private_redis_url: str) -> None:
    """Two caches stand for two worker processes: each reads only what was appended since."""
    client = redis.Redis.from_url(private_redis_url, decode_responses=True)
    mine, theirs = (AnswerCache(client, ttl_seconds=60, max_entries=10) for _ in range(2))
    key = bucket_key(0, "", None, None, None, "extractive", "minilm")
    first, second = uuid.uuid4(), uuid.uuid4()
    mine.store(key, first, unit(1.0, 0.0))
    assert [job for job, _ in theirs.nearest(key, unit(1.0, 0.0), 0.9)] == [first]

    mine.store(key, second, unit(1.0, 0.05))
    assert {job for job, _ in theirs.nearest(key, unit(1.0, 0.0), 0.9)} == {first, second}
    mine.forget(key, first)
    assert [job for job, _ in theirs.nearest(key, unit(1.0, 0.0), 0.9)] == [second]


def test_a_bucket_that_expired_and_was_made_again_is_read_from_its_start(
    private_redis_url: str,
) -> None:
    client = redis.Redis.from_url(private_redis_url, decode_responses=True)
    writer, reader = (AnswerCache(client, ttl_seconds=60, max_entries=10) for _ in range(2))
    key = bucket_key(0, "", None, None, None, "extractive", "minilm")
    old = [uuid.uuid4() for _ in range(3)]
    for job in old:
        writer.store(key, job, unit(1.0, 0.0))
    assert len(reader.nearest(key, unit(1.0, 0.0), 0.9)) == 3
    client.delete(key.redis_key() + ":log", key.redis_key() + ":epoch")  # as if it expired
    new = [uuid.uuid4() for _ in range(4)]  # longer than the reader's offset
    for job in new:
        writer.store(key, job, unit(1.0, 0.0))

    found = {job for job, _ in reader.nearest(key, unit(1.0, 0.0), 0.9)}
    assert found <= set(new) and len(found) == 3  # the 3 best of the new bucket, none old


def test_keys_differ_by_every_part_and_the_version_moves(private_redis_url: str) -> None:
    client = redis.Redis.from_url(private_redis_url, decode_responses=True)
    base = ("c", None, None, None, "m", "e")
    keys = {
        bucket_key(1, *base).redis_key(),
        bucket_key(2, *base).redis_key(),
        bucket_key(1, "d", None, None, None, "m", "e").redis_key(),
        bucket_key(1, "c", "text", None, None, "m", "e").redis_key(),
        bucket_key(
            1, "c", None, None, ReaderProfileIn(software_level="beginner"), "m", "e"
        ).redis_key(),
        bucket_key(1, "c", None, None, None, "other", "e").redis_key(),
    }
    assert len(keys) == 6
    before = index_version(client)
    bump_index_version(client)
    assert index_version(client) == before + 1
