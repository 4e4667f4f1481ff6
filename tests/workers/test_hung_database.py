"""A worker whose PostgreSQL connections hang gives them up and still answers.

The worker (one prefork child) reaches PostgreSQL through a proxy; the test black-holes the
connections its pool holds, as when a server hangs for good and another takes its address.
The API submits on a direct connection. The worker's next use of a pooled connection hits the
client deadline, the connection is closed and replaced, and the job completes. Without the
deadline the worker waits on the dead connection forever and the job never ends.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

from tests.support.redis_server import RedisServer
from tests.support.stack import Stack, make_settings, start_stack
from tests.support.tcp_proxy import TcpProxy
from web import create_app

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def worker_stack(
    tmp_path_factory: pytest.TempPathFactory, proxied_postgres_url: str
) -> Iterator[Stack]:
    """A worker on the proxied PostgreSQL with short deadlines, and a Redis of its own."""
    var_dir = tmp_path_factory.mktemp("hung-database-worker")
    redis_server = RedisServer(var_dir / "redis").start()
    settings = make_settings(
        var_dir,
        redis_server.url,
        proxied_postgres_url,
        database_statement_timeout_seconds=1.0,
        database_connect_timeout_seconds=2,
        outage_bound_seconds=5.0,
    )
    running = start_stack(settings, concurrency=1)  # one child: the one whose pool is warm
    yield running
    running.stop()
    redis_server.stop()


def test_a_job_completes_after_the_workers_connections_hang(
    worker_stack: Stack, postgres_proxy: TcpProxy
) -> None:
    # The API on the same schema, straight to PostgreSQL: only the worker's path hangs.
    direct_url = make_url(worker_stack.settings.sqlalchemy_url).set(
        host=postgres_proxy.upstream[0], port=postgres_proxy.upstream[1]
    )
    settings = worker_stack.settings.model_copy(
        update={"database_url": direct_url.render_as_string(hide_password=False)}
    )
    direct = Stack(settings=settings, app=create_app(settings), log_path=worker_stack.log_path)
    try:
        reader = direct.signup()
        first = direct.wait(reader, direct.submit(reader, message="What is a node?")["id"])
        assert first["status"] == "completed", first  # the worker's pool holds open connections

        postgres_proxy.blackhole_open()
        job = direct.submit(reader, message="And what is a topic?")
        finished = direct.wait(reader, job["id"], timeout=120)
    finally:
        direct.resources.close()

    assert finished["status"] == "completed", (finished, worker_stack.worker_log())
    assert finished["answer"]
