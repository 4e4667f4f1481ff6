"""The web's and the worker's client factories connect to the Redis they are given and start
nothing: without a REDIS_URL they refuse, naming what to run; with an unreachable one they
build (connections are lazy) and still start nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cli.embedded_redis import stop_embedded_redis
from tests.support.cli import redis_servers_in
from tests.support.stack import REPO_ROOT, make_settings, settings_env

UNREACHABLE = "redis://127.0.0.1:1/0"

# Run in a child process: an audit hook (which cannot be removed) records every process the
# factory starts, and the worker app's Celery signals stay out of the test process.
BUILD = """
import json, sys
SPAWNS = ("subprocess.Popen", "os.fork", "os.forkpty", "os.posix_spawn", "os.exec",
          "os.spawn", "os.system", "os.startfile")
spawned = []
sys.addaudithook(lambda event, args: spawned.append(event) if event in SPAWNS else None)
from common.platform.settings import Settings
settings = Settings(_env_file=None)
try:
    if sys.argv[1] == "web":
        from web import create_app
        create_app(settings)
    else:
        from workers.app import create_worker_app
        from workers.resources import WorkerResources
        resources = WorkerResources(settings)
        create_worker_app(settings, resources)
        resources.events  # the worker's Redis client, as its tasks use it
    outcome = "built"
except Exception as exc:
    outcome = f"{type(exc).__name__}: {exc}"
print(json.dumps({"outcome": outcome, "spawned": spawned}))
"""


def build(factory: str, var_dir: Path, redis_url: str | None) -> dict[str, Any]:
    """Build the web app or the worker's app and clients in a child process; what happened."""
    env = settings_env(make_settings(var_dir, redis_url))
    try:
        result = subprocess.run(
            [sys.executable, "-c", BUILD, factory],
            env=env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    finally:
        # Should a factory start the embedded Redis after all, it must not outlive the test.
        if (var_dir / "redis").exists():
            stop_embedded_redis(var_dir)
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


@pytest.mark.parametrize("factory", ["web", "worker"])
def test_without_a_redis_url_the_factories_refuse_and_start_nothing(
    tmp_path: Path, factory: str
) -> None:
    var_dir = tmp_path / "var"

    report = build(factory, var_dir, None)

    assert report["outcome"].startswith("RedisNotConfigured: REDIS_URL is not set"), report
    assert "`bookchat dev`" in report["outcome"]
    assert report["spawned"] == []
    assert not (var_dir / "redis").exists()
    assert redis_servers_in(tmp_path) == []


@pytest.mark.parametrize("factory", ["web", "worker"])
def test_with_an_unreachable_redis_the_factories_build_and_start_nothing(
    tmp_path: Path, factory: str
) -> None:
    var_dir = tmp_path / "var"

    report = build(factory, var_dir, UNREACHABLE)

    assert report == {"outcome": "built", "spawned": []}
    assert not (var_dir / "redis").exists()
    assert redis_servers_in(tmp_path) == []
