"""Fixtures of the queue tests: a broker of the test's own and the API's Celery app over it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery

from common.jobs.queue import make_celery
from tests.support.redis_server import RedisServer
from tests.support.stack import make_settings


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own: the queues' lists are this test's alone."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def celery(tmp_path: Path, broker: RedisServer) -> Celery:
    """The app as the API builds it."""
    return make_celery(make_settings(tmp_path, broker.url))
