"""The `bookchat` command: migrate, ask, ingest and search, run as a user would."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from cli.processes import BOOKCHAT
from tests.support.cli import clean_env
from tests.support.stack import REPO_ROOT, SAMPLE_TEXTBOOK, Stack, settings_env

pytestmark = (
    pytest.mark.slow
)  # end to end through real processes: `make test` runs it, `make test-fast` not


def test_migrate_creates_the_schema(tmp_path: Path) -> None:
    env = clean_env(VAR_DIR=str(tmp_path), ENVIRONMENT="test")
    result = subprocess.run([*BOOKCHAT, "migrate"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    tables = inspect(create_engine(f"sqlite:///{tmp_path / 'bookchat.db'}")).get_table_names()
    assert {"users", "conversations", "chat_jobs", "alembic_version"} <= set(tables)


def test_ask_goes_through_the_queue(stack: Stack) -> None:
    result = subprocess.run(
        [*BOOKCHAT, "ask", "What is a ROS 2 node?", "--timeout", "60"],
        env=settings_env(stack.settings), cwd=REPO_ROOT,
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "node" in result.stdout.lower()
    assert "[1] Nodes, Topics, Services, and Actions — What is a node?" in result.stdout


def run_cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `bookchat ARGS` with the stack's settings."""
    return subprocess.run([*BOOKCHAT, *args], env=settings_env(stack.settings), cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_ingest_shows_progress_and_a_summary(stack: Stack) -> None:
    result = run_cli(stack, "ingest", str(SAMPLE_TEXTBOOK), "--timeout", "60")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        "ingest completed: 0 changed, 4 skipped, 0 deleted, 0 failed files; "
        "0 chunks, 0 embeddings in "
    ), result.stdout
    assert "4/4" in result.stderr  # the progress bar


def test_ingest_lists_failed_files_and_exits_1(stack: Stack, tmp_path: Path) -> None:
    book = Path(shutil.copytree(SAMPLE_TEXTBOOK, tmp_path / "book"))
    (book / "broken.md").write_bytes(b"# Broken \xff\xfe\n")

    result = run_cli(stack, "ingest", str(book), "--timeout", "60")

    assert result.returncode == 1, result.stderr
    # A folder of its own: a new book beside the sample's, which loses nothing.
    assert "4 changed, 0 skipped, 0 deleted, 1 failed files" in result.stdout
    assert "  failed broken.md: " in result.stdout and "UTF-8" in result.stdout


def test_ingest_of_a_missing_folder_exits_1(stack: Stack, tmp_path: Path) -> None:
    result = run_cli(stack, "ingest", str(tmp_path / "nowhere"), "--timeout", "60")

    assert result.returncode == 1, result.stderr
    # One answer for a missing folder, a file or a path outside INGEST_ROOTS; the worker logs which.
    assert "error: the path is not a folder under the configured INGEST_ROOTS" in result.stdout


@pytest.mark.parametrize(
    ("args", "queue"),
    [
        (("ingest", str(SAMPLE_TEXTBOOK), "--timeout", "600"), "ingest"),
        (("ask", "What is a ROS 2 node?", "--timeout", "600"), "chat"),
        (("search", "ROS 2 workspace", "--timeout", "60"), "chat"),
    ],
)
def test_client_commands_without_a_worker_exit_2_at_once(
    idle_stack: Stack, args: tuple[str, ...], queue: str
) -> None:
    started = time.monotonic()
    result = run_cli(idle_stack, *args)

    assert result.returncode == 2, result.stderr
    assert time.monotonic() - started < 20  # long before the command's --timeout
    assert (
        f"no worker consumes the `{queue}` queue: start one with "
        f"`bookchat worker --queues {queue}` (or `make dev`)"
    ) in result.stderr


def test_search_prints_json_passages(stack: Stack) -> None:
    result = subprocess.run(
        [*BOOKCHAT, "search", "How do I build a ROS 2 workspace?", "--k", "2", "--json"],
        env=settings_env(stack.settings),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    passages = json.loads(result.stdout)
    assert len(passages) == 2
    assert {"book", "source", "heading", "title", "url", "text", "score"} == set(passages[0])
    assert any("colcon" in p["text"] for p in passages), passages
