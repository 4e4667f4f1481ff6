"""The fast lane as the API and the operator see it: a repeat's submit routes it, and the chat
queue's depth counts both lists (real Redis, no worker: the jobs stay queued)."""

from __future__ import annotations

from typing import Any

from common.jobs.queue import CHAT_QUEUE, CHAT_REPEATS_QUEUE, waiting_job_ids
from common.jobs.repeat_lane import repeat_hint_key, write_repeat_hint
from common.platform.redis_client import make_redis
from tests.support.stack import Stack
from workers.answer_cache import index_version


def _chat_depth(stack: Stack, headers: dict[str, str]) -> tuple[int, list[str]]:
    body: Any = stack.client.get("/v1/admin/queues", headers=headers).get_json()
    names = [queue["name"] for queue in body["data"]]
    return next(q["depth"] for q in body["data"] if q["name"] == CHAT_QUEUE), names


def test_a_repeats_submit_takes_the_fast_lane_and_counts_in_the_chat_queue(
    idle_stack: Stack,
) -> None:
    admin, reader = idle_stack.admin(), idle_stack.signup()
    client = make_redis(idle_stack.settings)
    stored = "How many wheels does TurtleBot 4 have, in the fast-lane test?"
    write_repeat_hint(client, repeat_hint_key(stored, None, None), index_version(client), 60)
    before, _ = _chat_depth(idle_stack, admin)

    new = idle_stack.submit(reader, message="A question nobody asked before the fast-lane test")
    repeat = idle_stack.submit(reader, message=stored.upper())
    follow_up = idle_stack.submit(reader, message=stored, conversation_id=repeat["conversation_id"])

    celery = idle_stack.resources.celery
    assert repeat["id"] in waiting_job_ids(celery, CHAT_REPEATS_QUEUE)
    assert {new["id"], follow_up["id"]} <= waiting_job_ids(celery, CHAT_QUEUE)  # no hint used
    after, names = _chat_depth(idle_stack, admin)
    assert after == before + 3
    assert CHAT_REPEATS_QUEUE not in names  # one row per kind of job: the chat queue's
