"""Two thousand open event streams on one gunicorn started with `bookchat web`'s command line."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.streams import (
    Stream,
    Tally,
    WebProcess,
    follow,
    login,
    make_jobs,
    publish_to_all,
    raise_fd_limit,
)
from bench.support import free_port
from cli.processes import web_command
from common.jobs.events import JobEvents
from common.platform.migrate import upgrade_database
from common.platform.redis_client import make_redis
from common.platform.settings import Settings
from tests.support.stack import make_settings
from tests.support.web_process import serving

pytestmark = (
    pytest.mark.slow
)  # end to end through real processes: `make test` runs it, `make test-fast` not

STREAMS = 2000  # the demo-day target: one web process holds 2,000 open streams
PATIENCE = 90.0  # seconds: generous on a loaded machine; a working server needs far less


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, redis_base_url: str) -> Settings:
    """SQLite in a folder of this module's own, Redis database 0 (keys are per job).

    One reader holds every stream here, so its share is raised to all of them (the caps are
    tested in test_streams_caps.py).
    """
    var_dir: Path = tmp_path_factory.mktemp("streams")
    configured = make_settings(
        var_dir, f"{redis_base_url}/0", port=free_port(), stream_limit_per_user=STREAMS
    )
    upgrade_database(configured)
    return configured


@pytest.fixture(scope="module")
def web(settings: Settings) -> Iterator[WebProcess]:
    """gunicorn as `bookchat web` runs it."""
    with serving(settings) as running:
        yield running


def test_the_web_command_runs_gevent_from_the_shared_config(settings: Settings) -> None:
    command = web_command(settings)
    config = Path(command[command.index("--config") + 1])
    assert config.name == "gunicorn_conf.py" and config.parent.name == "web"
    text = config.read_text()
    assert 'worker_class = "gevent"' in text and "worker_connections" in text


def test_every_open_stream_gets_its_event_while_the_api_answers(
    web: WebProcess, settings: Settings
) -> None:
    raise_fd_limit(STREAMS + 512)
    email, job_ids = make_jobs(settings, STREAMS)
    token = login(web.base_url, email)
    client = make_redis(settings)
    try:
        streams, health = asyncio.run(_hold(web, JobEvents(client), token, job_ids))
    finally:
        client.close()

    assert [s.error for s in streams if s.error] == []
    assert all(s.opened and s.received for s in streams)
    assert health and set(health) == {200}, health
    assert all(s.ended for s in streams)  # each ended on its job's `done`


async def open_streams_gauge(http: httpx.AsyncClient) -> float:
    """`bookchat_http_open_streams` as /metrics reports it."""
    text = (await http.get("/metrics")).text
    return float(next(line.split()[1] for line in text.splitlines() if line.startswith(
        "bookchat_http_open_streams "
    )))  # fmt: skip


async def _hold(
    web: WebProcess, events: JobEvents, token: str, job_ids: list[uuid.UUID]
) -> tuple[list[Stream], list[int]]:
    streams = [Stream(job_id) for job_id in job_ids]
    tally, gate = Tally(len(streams)), asyncio.Semaphore(100)
    tasks = [asyncio.create_task(follow(s, web.port, token, gate, tally)) for s in streams]
    try:
        await asyncio.wait_for(tally.all_opened.wait(), PATIENCE)
        async with httpx.AsyncClient(base_url=web.base_url, timeout=PATIENCE) as http:
            # Every connection is a waiting stream now; the API still answers.
            health = [(await http.get("/healthz")).status_code for _ in range(5)]
            gauge = await open_streams_gauge(http)
            assert gauge == len(streams), f"the gauge says {gauge} open streams"
            submitted = await http.post(
                "/v1/chat/jobs",
                json={"message": "still there?"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert submitted.status_code == 202, submitted.text
        await asyncio.to_thread(publish_to_all, events, job_ids, "status")
        await asyncio.wait_for(tally.all_received.wait(), PATIENCE)
        await asyncio.to_thread(publish_to_all, events, job_ids, "done")
        await asyncio.wait_for(asyncio.gather(*tasks), PATIENCE)
    finally:
        for task in tasks:
            task.cancel()
    return streams, health
