"""Fair shares on a real gunicorn (gevent): one guest's thousand streams, another reader's requests.

Default caps (8 streams and long-polls per user, 3 per job) except the per-address cap for
guests, lowered to 10 so two guests reach it. Keep-alive pings every 30 s: a slot freed within
the test's patience was freed because the server noticed the hang-up, not at a failed write.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bench.streams import WebProcess, raise_fd_limit
from bench.support import free_port
from common.platform.migrate import upgrade_database
from common.platform.settings import Settings
from tests.support.stack import make_settings
from tests.support.web_process import serving

ATTEMPTS = 1000
PATIENCE = 20.0  # seconds; a ping could not free a slot before 30 s
GUEST_ADDRESS_CAP = 10


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, redis_base_url: str) -> Settings:
    """SQLite of its own, Redis database 0 (slot and event keys are per user and job)."""
    var_dir: Path = tmp_path_factory.mktemp("stream-caps")
    configured = make_settings(
        var_dir,
        f"{redis_base_url}/0",
        port=free_port(),
        stream_limit_guest_address=GUEST_ADDRESS_CAP,
        stream_ping_seconds=30,
    )
    upgrade_database(configured)
    return configured


@pytest.fixture(scope="module")
def web(settings: Settings) -> Iterator[WebProcess]:
    """gunicorn as `bookchat web` runs it."""
    with serving(settings) as running:
        yield running


@dataclass
class Opened:
    """One stream request's answer: a held stream (its writer) or a refusal."""

    status: int
    headers: dict[str, str]
    body: bytes
    writer: asyncio.StreamWriter


async def open_stream(port: int, token: str, job_id: str) -> Opened:
    """GET the job's events on a connection of its own; a 200 is held open, others are read."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET /v1/chat/jobs/{job_id}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode().strip().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    status = int(status_line.split()[1])
    if status == 200:
        body = b""
        while b"retry:" not in body:  # the stream has begun
            body += await reader.read(4096)
    else:
        body = await reader.readexactly(int(headers["content-length"]))
        writer.close()
    return Opened(status, headers, body, writer)


def bearer(token: str) -> dict[str, str]:
    """An Authorization header."""
    return {"Authorization": f"Bearer {token}"}


def guest_token(http: httpx.Client) -> str:
    """A fresh guest's access token."""
    response = http.post("/v1/auth/guest")
    assert response.status_code == 201, response.text
    return str(response.json()["access_token"])


def submit(http: httpx.Client, token: str, message: str) -> str:
    """A queued job's id (no worker runs: it stays queued and its streams stay open)."""
    response = http.post("/v1/chat/jobs", json={"message": message}, headers=bearer(token))
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def open_streams_gauge(http: httpx.Client) -> float:
    """`bookchat_http_open_streams` as /metrics reports it."""
    text = http.get("/metrics").text
    return float(next(line.split()[1] for line in text.splitlines() if line.startswith(
        "bookchat_http_open_streams "
    )))  # fmt: skip


def wait_for(condition: object, what: str) -> None:
    """Poll `condition()` until it holds, for up to PATIENCE seconds."""
    deadline = time.monotonic() + PATIENCE
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_one_guest_is_capped_and_another_reader_is_not(web: WebProcess) -> None:
    raise_fd_limit(ATTEMPTS + 512)
    with httpx.Client(base_url=web.base_url, timeout=60) as http:
        guest = guest_token(http)
        jobs = [submit(http, guest, f"guest question {n}") for n in range(4)]
        reader = http.post(
            "/v1/auth/signup", json={"email": "fair@example.com", "password": "a fair share 1"}
        )
        assert reader.status_code == 201, reader.text
        token = reader.json()["access_token"]
        asyncio.run(_attack_and_read(web, http, guest, jobs, token))


async def _attack_and_read(
    web: WebProcess, http: httpx.Client, guest: str, jobs: list[str], token: str
) -> None:
    gate = asyncio.Semaphore(100)

    async def attempt(n: int) -> Opened:
        async with gate:
            return await open_stream(web.port, guest, jobs[n % len(jobs)])

    answers = await asyncio.gather(*(attempt(n) for n in range(ATTEMPTS)))
    held = [a for a in answers if a.status == 200]
    refused = [a for a in answers if a.status != 200]
    try:
        # Eight per user (no job above three), the rest 429 problems saying when to retry.
        assert len(held) == 8, [a.status for a in answers if a.status not in (200, 429)][:5]
        assert {a.status for a in refused} == {429}
        assert all(a.headers["content-type"] == "application/problem+json" for a in refused)
        assert all(int(a.headers["retry-after"]) > 0 for a in refused)
        bodies = [json.loads(a.body) for a in refused]
        assert {(b["code"], b["scope"]) for b in bodies} <= {
            ("too_many_streams", "user"),
            ("too_many_streams", "job"),
        }
        # A long-poll is a share too.
        polled = http.get(f"/v1/chat/jobs/{jobs[0]}?wait=1", headers=bearer(guest))
        assert polled.status_code == 429 and polled.json()["code"] == "too_many_streams"

        # Another reader: submit, read, long-poll and stream as if nobody else were there.
        mine = submit(http, token, "my own question")
        assert http.get(f"/v1/chat/jobs/{mine}", headers=bearer(token)).status_code == 200
        assert http.get(f"/v1/chat/jobs/{mine}?wait=1", headers=bearer(token)).status_code == 200
        own = await open_stream(web.port, token, mine)
        assert own.status == 200
        held.append(own)
        assert open_streams_gauge(http) == len(held) == 9

        # A reader that hangs up frees its slot (and its place in the gauge) at once.
        gone = held.pop(0).writer
        gone.close()
        await gone.wait_closed()
        wait_for(lambda: open_streams_gauge(http) == 8, "the closed stream is still counted")
        again = await open_stream(web.port, guest, jobs[0])
        assert again.status == 200
        held.append(again)

        # Guests are free to mint: all guests at one address share a cap (10 here).
        second = guest_token(http)
        theirs = [submit(http, second, f"second guest {n}") for n in range(2)]
        more = [await open_stream(web.port, second, job) for job in [*theirs, theirs[0]]]
        held.extend(a for a in more if a.status == 200)
        assert [a.status for a in more] == [200, 200, 429]
        assert json.loads(more[2].body)["scope"] == "guest-address"
        assert open_streams_gauge(http) == len(held) == 11
    finally:
        for answer in held:
            answer.writer.close()
