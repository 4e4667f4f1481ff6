"""`bookchat web` and `bookchat worker` without REDIS_URL: the command line starts (or reuses)
the embedded Redis and passes its URL down; the loaded settings stay as they were read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.embedded_redis import find_embedded_redis, stop_embedded_redis
from cli.main import _serving_settings
from common.platform.settings import get_settings


@pytest.fixture
def var_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A var/ of the test's own, REDIS_URL unset; its embedded Redis is stopped afterwards."""
    folder = tmp_path / "var"
    monkeypatch.setenv("REDIS_URL", "")  # empty is unset, and wins over any .env
    monkeypatch.setenv("VAR_DIR", str(folder))
    get_settings.cache_clear()
    yield folder
    stop_embedded_redis(folder)
    get_settings.cache_clear()


@pytest.mark.parametrize("command", ["web", "worker"])
def test_a_server_command_starts_the_embedded_redis_and_passes_its_url_down(
    var_dir: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = _serving_settings(command)

    assert settings.redis_url is not None
    assert settings.redis_url == find_embedded_redis(var_dir)
    assert get_settings().redis_url is None  # read once, never written
    said = capsys.readouterr().err
    assert f"bookchat {command}: REDIS_URL is unset; using the embedded Redis at" in said
    assert "`bookchat stop` stops it" in said
    assert _serving_settings(command).redis_url == settings.redis_url  # reused, not another
