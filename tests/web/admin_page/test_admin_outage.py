"""Redis away: the admin page answers a 503 page at once (sessions and the throttle live there)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import free_port
from tests.support.stack import Stack, make_settings, start_stack


@pytest.fixture(scope="module")
def no_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The app on SQLite with a Redis address nothing listens on."""
    var_dir: Path = tmp_path_factory.mktemp("admin-no-redis")
    running = start_stack(
        make_settings(var_dir, f"redis://127.0.0.1:{free_port()}/0"), with_worker=False
    )
    yield running
    running.stop()


def test_without_redis_the_page_and_its_login_are_a_503_page(no_redis: Stack) -> None:
    client = no_redis.client
    client.set_cookie("bookchat_admin", "x" * 43)

    for path in ("/admin/", "/admin/login"):
        response = client.get(path, headers={"Accept": "text/html"})
        assert response.status_code == 503, path
        assert response.mimetype == "text/html"
        assert int(response.headers["Retry-After"]) >= 1
        assert "Redis unavailable" in response.get_data(as_text=True)
