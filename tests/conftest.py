"""Shared fixtures: real Redis, real databases, real worker processes, the OpenAI simulator."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from bench.openai_sim import SimConfig, SimulatorHandle, start_simulator
from cli.embedded_redis import ensure_embedded_redis, stop_embedded_redis
from common.platform.observability import MULTIPROC_ENV
from tests.support.stack import NewStack, Stack, make_settings, simulator_settings, start_stack
from tests.support.tcp_proxy import TcpProxy

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
_redis_databases = itertools.count(1)
ALL_QUEUES = ("chat", "ingest", "reprocess")
REDIS_DATABASES = 64  # one per stack: the suite starts more than the default 16
# Prometheus multiprocess mode for the session: the app in this process and every worker
# process share one folder, as under `bookchat dev`. Set before anything imports
# prometheus_client (bookchat imports it lazily, on first use).
METRICS_DIR = tempfile.mkdtemp(prefix="bookchat-metrics-")
os.environ[MULTIPROC_ENV] = METRICS_DIR


BROWSER_TESTS = Path(__file__).resolve().parent / "browser"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/browser `browser`, so `make test-fast` can leave them out;
    then put the files of slow and browser tests first.

    `make test` hands whole files to its processes in collection order: a minutes-long file
    handed out last would leave the other process idle until it ends.
    """
    for item in items:
        if BROWSER_TESTS in item.path.parents:
            item.add_marker(pytest.mark.browser)
    heavy = {
        item.path
        for item in items
        if item.get_closest_marker("slow") or item.get_closest_marker("browser")
    }
    items.sort(key=lambda item: item.path not in heavy)  # stable: a file's tests stay together


@pytest.fixture(scope="session", autouse=True)
def _metrics_dir() -> Iterator[str]:
    """The session's Prometheus folder, removed at the end."""
    yield METRICS_DIR
    shutil.rmtree(METRICS_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server private to this test session (the embedded default's own binary)."""
    var_dir = tmp_path_factory.mktemp("redis")
    url = ensure_embedded_redis(var_dir, databases=REDIS_DATABASES)
    yield url.rsplit("/", 1)[0]
    stop_embedded_redis(var_dir)


@pytest.fixture
def redis_url(redis_base_url: str) -> str:
    """Redis database 0, shared: tests keep apart through unique ids in their keys."""
    return f"{redis_base_url}/0"


def _new_redis_db(base: str) -> str:
    # Each stack gets its own database so their Celery queues never mix.
    number = next(_redis_databases)
    assert number < REDIS_DATABASES, f"too many stacks for Redis' {REDIS_DATABASES} databases"
    return f"{base}/{number}"


@pytest.fixture
def private_redis_url(redis_base_url: str) -> str:
    """A Redis database of the test's own, for one whose keys (a queue's) cannot be unique."""
    return _new_redis_db(redis_base_url)


def _postgres_reachable() -> bool:
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=2):
            return True
    except psycopg.Error:
        return False


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh schema in the local PostgreSQL, or skip when none is reachable."""
    if not _postgres_reachable():
        pytest.skip("PostgreSQL is not reachable at " + POSTGRES_URL)
    schema = f"bookchat_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(scope="module")
def postgres_proxy(postgres_url: str) -> Iterator[TcpProxy]:
    """A path to the test PostgreSQL that a test can cut or stall (skips when there is none)."""
    url = make_url(postgres_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as running:
        yield running


@pytest.fixture(scope="module")
def proxied_postgres_url(postgres_url: str, postgres_proxy: TcpProxy) -> Iterator[str]:
    """A fresh schema of the test module's own, reached through `postgres_proxy`."""
    direct = make_url(postgres_url).difference_update_query(["options"])
    schema = f"bookchat_proxied_{uuid.uuid4().hex[:8]}"
    conninfo = direct.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    proxied = direct.set(host="127.0.0.1", port=postgres_proxy.port).update_query_dict(
        {"options": f"-csearch_path={schema}"}
    )
    yield proxied.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Each database bookchat supports: SQLite always, PostgreSQL when reachable."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'bookchat.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(scope="session")
def new_stack(tmp_path_factory: pytest.TempPathFactory, redis_base_url: str) -> NewStack:
    """Start stacks of their own (see `NewStack`): `with new_stack("name") as stack: ...`."""

    @contextmanager
    def running(
        name: str,
        *,
        var_dir: Path | None = None,
        database_url: str | None = None,
        with_worker: bool = True,
        queues: Sequence[str] = ("chat", "ingest"),
        **overrides: Any,
    ) -> Iterator[Stack]:
        folder = var_dir or tmp_path_factory.mktemp(name)
        settings = make_settings(folder, _new_redis_db(redis_base_url), database_url, **overrides)
        stack = start_stack(settings, with_worker=with_worker, queues=queues)
        try:
            yield stack
        finally:
            stack.stop()

    return running


@pytest.fixture(scope="session")
def stack(new_stack: NewStack) -> Iterator[Stack]:
    """SQLite, the extractive answerer, and one real worker that ingested the sample book."""
    with new_stack("stack") as running:
        yield running


@pytest.fixture(scope="session")
def ingest_stack(new_stack: NewStack) -> Iterator[Stack]:
    """Like `stack`, for tests that rebuild or reshape the index (others keep theirs intact)."""
    with new_stack("ingest") as running:
        yield running


@pytest.fixture(scope="session")
def insights_stack(new_stack: NewStack) -> Iterator[Stack]:
    """Like `stack`, with its one worker also on the reprocess queue (insights runs need the
    index it holds)."""
    with new_stack("insights", queues=ALL_QUEUES) as running:
        yield running


@pytest.fixture(scope="session")
def idle_stack(new_stack: NewStack) -> Iterator[Stack]:
    """The API with no worker: jobs stay queued."""
    with new_stack("idle", with_worker=False) as running:
        yield running


@pytest.fixture(scope="session")
def simulator() -> Iterator[SimulatorHandle]:
    """The OpenAI-compatible simulator on 127.0.0.1."""
    with start_simulator(SimConfig(ttft_s=0.01)) as handle:
        yield handle


# The session's stacks that talk to the simulator: their workers outlive each test.
SIMULATOR_STACKS = ("openai_stack", "limited_stack")


@pytest.fixture
def sim(request: pytest.FixtureRequest, simulator: SimulatorHandle) -> Iterator[SimulatorHandle]:
    """The simulator with its default behaviour restored after the test.

    Before the reset, the test's stacks finish every job it left behind: a job still queued
    would call the model during the next test and count in that test's log.
    """
    simulator.reset()
    yield simulator
    for name in SIMULATOR_STACKS:
        if name in request.fixturenames:
            request.getfixturevalue(name).wait_until_idle()
    simulator.update_config(**SimConfig(ttft_s=0.01).to_dict())
    simulator.reset()


@pytest.fixture(scope="session")
def openai_stack(new_stack: NewStack, simulator: SimulatorHandle) -> Iterator[Stack]:
    """Like `stack`, but answers come from the OpenAI SDK talking to the simulator."""
    with new_stack("openai", **simulator_settings(simulator)) as running:
        yield running


@pytest.fixture(scope="session")
def insights_openai_stack(new_stack: NewStack, simulator: SimulatorHandle) -> Iterator[Stack]:
    """Like `insights_stack`, with a model (the simulator) for the gap groups' findings."""
    with new_stack(
        "insights-openai", queues=ALL_QUEUES, **simulator_settings(simulator)
    ) as running:
        yield running


@pytest.fixture(scope="session")
def limited_stack(new_stack: NewStack, simulator: SimulatorHandle) -> Iterator[Stack]:
    """The OpenAI path with an account limit of 6 requests a minute, to force re-queueing."""
    limits: dict[str, Any] = {"llm_rpm": 6, "llm_headroom": 1.0, "llm_burst_seconds": 10.0}
    with new_stack("limited", **simulator_settings(simulator), **limits) as running:
        yield running


@pytest.fixture(scope="session")
def pg_stack(new_stack: NewStack, postgres_url: str) -> Iterator[Stack]:
    """The whole path on PostgreSQL."""
    with new_stack("pg", database_url=postgres_url) as running:
        yield running


@pytest.fixture
def repo_root() -> Path:
    """The repository root."""
    return Path(__file__).resolve().parents[1]
