"""/metrics and the readiness report are private; the public /readyz says ready or not."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask_openapi3 import OpenAPI
from pydantic import SecretStr
from sqlalchemy import event

from tests.support.stack import Stack
from web import create_app
from web.private_probes import TimedCache

OUTSIDE = {"REMOTE_ADDR": "203.0.113.7"}  # a client on another network
TOKEN = "metrics-token-" + "m" * 32


@pytest.fixture
def token_app(idle_stack: Stack) -> Iterator[OpenAPI]:
    """The idle stack's API with METRICS_TOKEN set and a scrape cache that outlasts a test."""
    settings = idle_stack.settings.model_copy(
        update={"metrics_token": SecretStr(TOKEN), "metrics_cache_seconds": 60.0}
    )
    app = create_app(settings)
    yield app
    app.extensions["bookchat"].close()


def bearer(token: str) -> dict[str, str]:
    """An Authorization header."""
    return {"Authorization": f"Bearer {token}"}


def test_public_readyz_says_only_ready_or_not(stack: Stack) -> None:
    response = stack.client.get("/readyz", environ_base=OUTSIDE)

    assert response.status_code == 200
    assert response.get_json() == {"status": "ready"}
    text = response.get_data(as_text=True)
    assert "@" not in text and str(stack.settings.textbook_path) not in text


def test_public_readyz_is_503_without_a_report_when_not_ready(idle_stack: Stack) -> None:
    response = idle_stack.client.get("/readyz", environ_base=OUTSIDE)

    assert response.status_code == 503
    assert response.get_json() == {"status": "not_ready"}


def test_private_probes_are_not_found_from_outside_without_a_token(stack: Stack) -> None:
    for path in ("/metrics", "/readyz?detail=true"):
        response = stack.client.get(path, environ_base=OUTSIDE)
        assert response.status_code == 404, path
        assert response.mimetype == "application/problem+json"
        assert "bookchat_" not in response.get_data(as_text=True)


def test_a_loopback_request_forwarded_by_a_proxy_is_from_outside(stack: Stack) -> None:
    for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
        response = stack.client.get("/metrics", headers={header: "203.0.113.7"})
        assert response.status_code == 404, header


def test_this_hosts_loopback_reads_them_without_a_token(stack: Stack) -> None:
    assert stack.client.get("/metrics").status_code == 200
    for address in ("127.0.0.1", "::1"):
        report = stack.client.get("/readyz?detail=true", environ_base={"REMOTE_ADDR": address})
        assert report.status_code == 200
        assert report.get_json()["checks"]["workers"]["live"]


def test_an_admin_reads_them_from_anywhere_and_a_reader_may_not(stack: Stack) -> None:
    admin, reader = stack.admin(), stack.signup()

    metrics = stack.client.get("/metrics", headers=admin, environ_base=OUTSIDE)
    report = stack.client.get("/readyz?detail=true", headers=admin, environ_base=OUTSIDE)

    assert metrics.status_code == 200 and b"bookchat_jobs" in metrics.data
    assert report.status_code == 200 and report.get_json()["checks"]["index"]["ok"]
    for path in ("/metrics", "/readyz?detail=true"):
        refused = stack.client.get(path, headers=reader, environ_base=OUTSIDE)
        assert refused.status_code == 403, path
        assert refused.mimetype == "application/problem+json"


def test_with_a_metrics_token_only_its_holders_and_admins_read_them(
    idle_stack: Stack, token_app: OpenAPI
) -> None:
    client = token_app.test_client()
    for path in ("/metrics", "/readyz?detail=true"):
        assert client.get(path, headers=bearer(TOKEN), environ_base=OUTSIDE).status_code in (
            200,
            503,  # the idle stack is not ready: its report still comes
        ), path
        # With a token set, loopback is no longer enough.
        assert client.get(path).status_code == 401, path
        assert client.get(path, headers=bearer(TOKEN[:-1] + "x")).status_code == 401, path
    report = client.get("/readyz?detail=true", headers=bearer(TOKEN), environ_base=OUTSIDE)
    assert "checks" in report.get_json()
    assert client.get("/metrics", headers=idle_stack.admin()).status_code == 200


def test_a_burst_of_scrapes_reads_the_database_once(token_app: OpenAPI) -> None:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = token_app.extensions["bookchat"].engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        client = token_app.test_client()
        bodies = [client.get("/metrics", headers=bearer(TOKEN)).data for _ in range(20)]
        for _ in range(20):
            client.get("/readyz", environ_base=OUTSIDE)
    finally:
        event.remove(engine, "before_cursor_execute", count)

    assert len(set(bodies)) == 1 and b"bookchat_jobs" in bodies[0]
    job_counts = [s for s in statements if "GROUP BY" in s.upper()]
    assert len(job_counts) == 3, job_counts  # one GROUP BY per job table, once
    assert sum("SELECT 1" in s for s in statements) == 1  # the readiness check, once


def test_the_cache_computes_again_after_its_period() -> None:
    now = [100.0]
    cache: TimedCache[int] = TimedCache(2.0, clock=lambda: now[0])
    calls = iter(range(10))

    assert cache.get(lambda: next(calls)) == 0
    now[0] += 1.9
    assert cache.get(lambda: next(calls)) == 0
    now[0] += 0.1
    assert cache.get(lambda: next(calls)) == 1
