"""The embedded default under a held write lock: the API keeps answering, the waiting submit lands.

gunicorn as `bookchat web` runs it (gevent), on SQLite. Another process takes SQLite's write
lock (as a Celery worker's commit does, only longer) and holds it until the test lets go. A
submit sent meanwhile waits for the lock; while it waits and the lock is still held, `/healthz`
and a read of the reader's account keep answering. Once the lock is released the submit is
accepted and its job is there: nothing lost. Before the wait left the event loop, the first
`/healthz` after the submit reached SQLite hung for as long as the lock was held.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy.engine import make_url

from bench.streams import WebProcess
from common.platform.settings import Settings
from tests.support.stack import TEST_PASSWORD
from tests.support.web_process import migrated_settings, serving

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
ROUNDS = 20  # requests answered while the submit waits for the lock
PATIENCE = 20.0  # a client time-out, not a measure: an answering server needs far less

HOLD_LOCK = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
connection.execute("COMMIT")
print("released", flush=True)
"""


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, redis_base_url: str) -> Settings:
    """The embedded default's SQLite in a folder of this module's own."""
    return migrated_settings(tmp_path_factory.mktemp("sqlite-lock"), redis_base_url)


@pytest.fixture(scope="module")
def web(settings: Settings) -> Iterator[WebProcess]:
    """gunicorn as `bookchat web` runs it."""
    with serving(settings) as running:
        yield running


def test_the_api_answers_while_a_submit_waits_for_the_lock(
    web: WebProcess, settings: Settings
) -> None:
    http = httpx.Client(base_url=web.base_url, timeout=PATIENCE)
    login = {"email": "lock-wait@example.com", "password": TEST_PASSWORD}
    token = http.post("/v1/auth/signup", json=login).json()["access_token"]
    reader = {"Authorization": f"Bearer {token}"}
    database = make_url(settings.sqlalchemy_url).database
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(database)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    try:
        assert holder.stdout.readline().strip() == "locked"
        with ThreadPoolExecutor(max_workers=1) as pool:
            body = {"message": "Does my question wait for the lock?"}
            submit = pool.submit(http.post, "/v1/chat/jobs", json=body, headers=reader)
            answered = []
            for _ in range(ROUNDS):
                answered.append(http.get("/healthz").status_code)
                answered.append(http.get("/v1/me", headers=reader).status_code)
            # Every answer came while the submit was still waiting: the lock is still held.
            assert not submit.done(), submit.result().text
            assert answered == [200] * (2 * ROUNDS)
            holder.stdin.write("go\n")
            holder.stdin.flush()
            assert holder.stdout.readline().strip() == "released"
            accepted = submit.result(timeout=PATIENCE)
        assert accepted.status_code == 202, accepted.text
        job = http.get(f"/v1/chat/jobs/{accepted.json()['id']}", headers=reader)
        assert job.status_code == 200 and job.json()["message"] == body["message"]
    finally:
        holder.kill()
        holder.wait()
        http.close()
