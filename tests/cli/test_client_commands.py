"""Client commands find var/ from any folder, and never start a bookchat of their own."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cli.embedded_redis import find_embedded_redis
from common.platform.settings import Settings
from tests.support.cli import clean_env, redis_servers_in, run_bookchat
from tests.support.stack import REPO_ROOT, SAMPLE_TEXTBOOK

NOT_RUNNING = "bookchat is not running"
START_IT = "start it with `make dev` (or set REDIS_URL)"

COMMANDS = [
    ("ask", "What is a ROS 2 node?", "--timeout", "600"),
    ("ingest", str(SAMPLE_TEXTBOOK), "--timeout", "600"),
    ("search", "ROS 2 workspace", "--timeout", "60"),
    ("worker-alive", "bookchat@nowhere"),
]


def test_var_dir_and_textbook_default_to_the_project_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("VAR_DIR", "TEXTBOOK_PATH"):
        monkeypatch.delenv(name, raising=False)

    settings = Settings(_env_file=None)  # type: ignore[call-arg]

    assert settings.var_dir == REPO_ROOT / "var"
    assert settings.textbook_path == SAMPLE_TEXTBOOK


@pytest.mark.parametrize("args", COMMANDS, ids=[args[0] for args in COMMANDS])
def test_client_commands_without_bookchat_exit_2_and_start_nothing(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    elsewhere, var_dir = tmp_path / "elsewhere", tmp_path / "var"
    elsewhere.mkdir()
    started = time.monotonic()

    result = run_bookchat(*args, env=clean_env(VAR_DIR=str(var_dir)), cwd=elsewhere, timeout=60)

    assert result.returncode == 2, result.stderr
    assert time.monotonic() - started < 20
    assert NOT_RUNNING in result.stderr and START_IT in result.stderr, result.stderr
    assert not (elsewhere / "var").exists()
    assert not (var_dir / "redis").exists()
    assert redis_servers_in(tmp_path) == []


def test_ask_from_another_folder_uses_the_project_var_dir(tmp_path: Path) -> None:
    """With VAR_DIR unset, `ask` looks in the project's var/, not in the current folder."""
    project_var = REPO_ROOT / "var"
    if find_embedded_redis(project_var) is not None:
        pytest.skip("a bookchat dev is running from the project folder")
    had_redis_dir = (project_var / "redis").exists()
    env = {k: v for k, v in clean_env().items() if k not in ("VAR_DIR", "TEXTBOOK_PATH")}

    result = run_bookchat("ask", "What is a ROS 2 node?", env=env, cwd=tmp_path, timeout=60)

    assert result.returncode == 2, result.stderr
    assert f"no embedded Redis is running under {project_var}" in result.stderr, result.stderr
    assert list(tmp_path.iterdir()) == []
    assert (project_var / "redis").exists() == had_redis_dir
    assert find_embedded_redis(project_var) is None
