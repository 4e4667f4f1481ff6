"""The search request a web process sends: what the broker's task metadata shows of it."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from common.jobs.queue import CHAT_QUEUE, make_celery
from common.jobs.search_rpc import request_search
from common.platform.errors import ServiceUnavailable
from common.platform.redis_client import make_redis
from tests.conftest import _new_redis_db
from tests.support.stack import make_settings

QUESTION = "how do I recalibrate my prosthetic knee after surgery"


def test_the_readers_words_are_in_the_body_but_not_in_the_tasks_shown_arguments(
    tmp_path: Path, redis_base_url: str
) -> None:
    settings = make_settings(tmp_path, _new_redis_db(redis_base_url))
    celery, client = make_celery(settings), make_redis(settings)
    with pytest.raises(ServiceUnavailable):  # no worker answers: the message stays queued
        request_search(celery, client, QUESTION, 5, None, timeout=0.5)

    queued: list[bytes] = client.lrange(CHAT_QUEUE, 0, -1)  # type: ignore[assignment]
    [raw] = queued
    message = json.loads(raw)
    shown = message["headers"]["argsrepr"] + message["headers"]["kwargsrepr"]
    assert "prosthetic" not in shown and f"<{len(QUESTION)} characters>" in shown
    assert QUESTION in base64.b64decode(message["body"]).decode()  # the worker still gets it
