"""`bookchat web` (gunicorn) as a real process for tests that need its server, not the app."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.streams import WebProcess, start_web
from bench.support import free_port
from common.platform.migrate import upgrade_database
from common.platform.settings import Settings
from tests.support.stack import make_settings, settings_env


def migrated_settings(var_dir: Path, redis_base_url: str) -> Settings:
    """Settings over the embedded default's SQLite in `var_dir`, on a free port, migrated."""
    settings = make_settings(var_dir, f"{redis_base_url}/0", port=free_port())
    upgrade_database(settings)
    return settings


@contextmanager
def serving(settings: Settings) -> Iterator[WebProcess]:
    """gunicorn as `bookchat web` runs it, stopped after the block."""
    running = start_web(settings, settings_env(settings))
    try:
        yield running
    finally:
        running.stop()
