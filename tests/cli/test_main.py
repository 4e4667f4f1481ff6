"""The `bookchat` command: migrate, ask, and `dev` run end to end as a user would."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, inspect

from cli.processes import BOOKCHAT
from tests.support.stack import REPO_ROOT, SAMPLE_TEXTBOOK, Stack, settings_env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**values: str) -> dict[str, str]:
    """The environment of a fresh machine: no bookchat configuration at all."""
    names = ("REDIS_URL", "DATABASE_URL", "QDRANT_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL")
    env = {k: v for k, v in os.environ.items() if k not in names}
    return {**env, **values}


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
    assert "4 skipped, 0 deleted, 1 failed files" in result.stdout
    assert "  failed broken.md: " in result.stdout and "UTF-8" in result.stdout


def test_ingest_of_a_missing_folder_exits_1(stack: Stack, tmp_path: Path) -> None:
    result = run_cli(stack, "ingest", str(tmp_path / "nowhere"), "--timeout", "60")

    assert result.returncode == 1, result.stderr
    assert f"error: folder not found: {tmp_path / 'nowhere'}" in result.stdout


def test_ingest_without_a_worker_times_out_with_2(idle_stack: Stack) -> None:
    result = run_cli(idle_stack, "ingest", str(SAMPLE_TEXTBOOK), "--timeout", "1")

    assert result.returncode == 2
    assert "did not finish within 1s (is a worker running?)" in result.stderr


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
    assert {"source", "heading", "title", "url", "text", "score"} == set(passages[0])
    assert any("colcon" in p["text"] for p in passages), passages


def _wait_ready(base: str, process: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "bookchat dev exited early"
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("bookchat dev did not become ready")


@pytest.mark.timeout(240)
def test_dev_runs_everything_on_a_fresh_machine(tmp_path: Path) -> None:
    """`bookchat dev` with nothing configured: embedded Redis, SQLite, local Qdrant, one worker."""
    port = free_port()
    env = clean_env(VAR_DIR=str(tmp_path / "var"), PORT=str(port),
                    TEXTBOOK_PATH=str(REPO_ROOT / "examples" / "textbook"))  # fmt: skip
    log = (tmp_path / "dev.log").open("wb")
    process = subprocess.Popen([*BOOKCHAT, "dev"], env=env, cwd=tmp_path, stdout=log,
                               stderr=subprocess.STDOUT)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, process)
        with httpx.Client(base_url=base, timeout=30) as http:
            signup = http.post(
                "/v1/auth/signup", json={"email": "ada@example.com", "password": "correct horse"}
            )
            headers = {"Authorization": f"Bearer {signup.json()['access_token']}"}
            job = None
            # The sample book is ingested on first start; ask until it is there.
            for _ in range(40):
                submitted = http.post(
                    "/v1/chat/jobs", headers=headers, json={"message": "What is a ROS 2 node?"}
                )
                assert submitted.status_code == 202
                job = http.get(submitted.headers["Location"] + "?wait=20", headers=headers).json()
                if job["status"] == "completed" and job["citations"]:
                    break
                time.sleep(0.5)
            assert job is not None and job["status"] == "completed", job
            assert job["citations"][0]["heading"] == "What is a node?"
            with http.stream("GET", f"/v1/chat/jobs/{job['id']}/events", headers=headers) as sse:
                assert sse.headers["content-type"].startswith("text/event-stream")
                body = "".join(sse.iter_text())
            last_frame = body.strip().split("\n\n")[-1]
            assert "event: delta" in body
            assert "event: done" in last_frame and '"status": "completed"' in last_frame
    finally:
        process.send_signal(signal.SIGINT)
        time.sleep(0.2)
        process.send_signal(signal.SIGINT)  # a second Ctrl-C must not cut the shutdown short
        code = process.wait(timeout=60)
        log.close()
    output = (tmp_path / "dev.log").read_text()
    assert code == 0, output[-3000:]
    assert not (tmp_path / "var" / "redis" / "redis.port").exists(), "embedded Redis left running"
    assert (tmp_path / "var" / "redis" / "appendonly.aof").exists()
