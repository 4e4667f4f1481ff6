"""Shared fixtures: real Redis, real databases, real worker processes, the OpenAI simulator."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from bench.openai_sim import SimConfig, SimulatorHandle, start_simulator
from cli.embedded_redis import ensure_embedded_redis, stop_embedded_redis
from common.platform.observability import MULTIPROC_ENV
from common.platform.settings import Settings
from tests.support.stack import Stack, make_settings, start_stack
from tests.support.tcp_proxy import TcpProxy

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
_redis_databases = itertools.count(1)
REDIS_DATABASES = 64  # one per stack: the suite starts more than the default 16
# Prometheus multiprocess mode for the session: the app in this process and every worker
# process share one folder, as under `bookchat dev`. Set before anything imports
# prometheus_client (bookchat imports it lazily, on first use).
METRICS_DIR = tempfile.mkdtemp(prefix="bookchat-metrics-")
os.environ[MULTIPROC_ENV] = METRICS_DIR


BROWSER_TESTS = Path(__file__).resolve().parent / "browser"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/browser `browser`, so `make test-fast` can leave them out."""
    for item in items:
        if BROWSER_TESTS in item.path.parents:
            item.add_marker(pytest.mark.browser)


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
def stack(tmp_path_factory: pytest.TempPathFactory, redis_base_url: str) -> Iterator[Stack]:
    """SQLite, the extractive answerer, and one real worker that ingested the sample book."""
    var_dir = tmp_path_factory.mktemp("stack")
    running = start_stack(make_settings(var_dir, _new_redis_db(redis_base_url)))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def ingest_stack(tmp_path_factory: pytest.TempPathFactory, redis_base_url: str) -> Iterator[Stack]:
    """Like `stack`, for tests that rebuild or reshape the index (others keep theirs intact)."""
    var_dir = tmp_path_factory.mktemp("ingest")
    running = start_stack(make_settings(var_dir, _new_redis_db(redis_base_url)))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def insights_stack(
    tmp_path_factory: pytest.TempPathFactory, redis_base_url: str
) -> Iterator[Stack]:
    """Like `stack`, with its one worker also on the reprocess queue (insights runs need the
    index it holds)."""
    var_dir = tmp_path_factory.mktemp("insights")
    settings = make_settings(var_dir, _new_redis_db(redis_base_url))
    running = start_stack(settings, queues=("chat", "ingest", "reprocess"))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def idle_stack(tmp_path_factory: pytest.TempPathFactory, redis_base_url: str) -> Iterator[Stack]:
    """The API with no worker: jobs stay queued."""
    var_dir = tmp_path_factory.mktemp("idle")
    running = start_stack(make_settings(var_dir, _new_redis_db(redis_base_url)), with_worker=False)
    yield running
    running.stop()


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


def _openai_settings(
    var_dir: Path, redis_base_url: str, simulator: SimulatorHandle, **overrides: Any
) -> Settings:
    return make_settings(
        var_dir,
        _new_redis_db(redis_base_url),
        openai_api_key="sk-test",
        openai_base_url=f"{simulator.url}/v1",
        openai_timeout_seconds=5.0,
        **overrides,
    )


@pytest.fixture(scope="session")
def openai_stack(
    tmp_path_factory: pytest.TempPathFactory, redis_base_url: str, simulator: SimulatorHandle
) -> Iterator[Stack]:
    """Like `stack`, but answers come from the OpenAI SDK talking to the simulator."""
    var_dir = tmp_path_factory.mktemp("openai")
    running = start_stack(_openai_settings(var_dir, redis_base_url, simulator))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def insights_openai_stack(
    tmp_path_factory: pytest.TempPathFactory, redis_base_url: str, simulator: SimulatorHandle
) -> Iterator[Stack]:
    """Like `insights_stack`, with a model (the simulator) for the gap groups' findings."""
    var_dir = tmp_path_factory.mktemp("insights-openai")
    settings = _openai_settings(var_dir, redis_base_url, simulator)
    running = start_stack(settings, queues=("chat", "ingest", "reprocess"))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def limited_stack(
    tmp_path_factory: pytest.TempPathFactory, redis_base_url: str, simulator: SimulatorHandle
) -> Iterator[Stack]:
    """The OpenAI path with an account limit of 6 requests a minute, to force re-queueing."""
    var_dir = tmp_path_factory.mktemp("limited")
    settings = _openai_settings(
        var_dir, redis_base_url, simulator, llm_rpm=6, llm_headroom=1.0, llm_burst_seconds=10.0
    )
    running = start_stack(settings)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def pg_stack(
    tmp_path_factory: pytest.TempPathFactory, redis_base_url: str, postgres_url: str
) -> Iterator[Stack]:
    """The whole path on PostgreSQL."""
    var_dir = tmp_path_factory.mktemp("pg")
    running = start_stack(make_settings(var_dir, _new_redis_db(redis_base_url), postgres_url))
    yield running
    running.stop()


@pytest.fixture
def repo_root() -> Path:
    """The repository root."""
    return Path(__file__).resolve().parents[1]
