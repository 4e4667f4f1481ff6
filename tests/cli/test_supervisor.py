"""`bookchat dev` cleans up after itself: `kill -9`, a dead Redis, `bookchat stop`, refusals."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from cli.embedded_redis import find_embedded_redis
from cli.processes import port_problem
from tests.support.cli import DevRun, alive, clean_env, run_bookchat

pytestmark = pytest.mark.slow  # real-process fault runs: left out of `make test-fast`

# "Within seconds": a deadline to fail instead of hanging, not a measured time.
GONE_WITHIN = 15


def _wait_until_gone(dev: DevRun) -> None:
    deadline = time.monotonic() + GONE_WITHIN
    while dev.leftovers():
        assert time.monotonic() < deadline, f"still running: {dev.leftovers()}\n{dev.output()}"
        time.sleep(0.2)


def _ask(dev: DevRun, headers: dict[str, str], question: str) -> dict[str, object]:
    """Submit a chat job and wait for its end (the extractive answerer needs no API key)."""
    with httpx.Client(base_url=dev.base_url, timeout=40) as http:
        deadline = time.monotonic() + 60
        while True:  # right after a Redis restart the API may answer 503 for a moment
            submitted = http.post("/v1/chat/jobs", headers=headers, json={"message": question})
            if submitted.status_code == 202 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert submitted.status_code == 202, submitted.text
        location = submitted.headers["Location"]
        while True:
            job: dict[str, object] = http.get(location + "?wait=20", headers=headers).json()
            if job["status"] not in ("queued", "in_progress") or time.monotonic() > deadline:
                return job
            time.sleep(0.2)


def _sign_up(dev: DevRun, email: str) -> dict[str, str]:
    with httpx.Client(base_url=dev.base_url, timeout=30) as http:
        signup = http.post("/v1/auth/signup", json={"email": email, "password": "correct horse"})
    assert signup.status_code == 201, signup.text
    return {"Authorization": f"Bearer {signup.json()['access_token']}"}


def _redis_port(var_dir: Path) -> str:
    return (var_dir / "redis" / "redis.port").read_text().strip()


@pytest.mark.timeout(240)
def test_kill_9_of_dev_leaves_no_process_within_seconds(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    dev = DevRun.start(tmp_path / "var", tmp_path / "dev.log", cwd=tmp_path, HOME=str(home))
    try:
        dev.wait_until_up()
        assert dev.redis_pid is not None and alive(dev.redis_pid)

        dev.process.kill()
        dev.process.wait(timeout=10)

        _wait_until_gone(dev)
        assert port_problem(dev.port) is None, f"port {dev.port} is still taken"
        assert find_embedded_redis(dev.var_dir) is None
        # gunicorn's default control socket, ~/.gunicorn/gunicorn.ctl, is shared by every instance.
        assert not (home / ".gunicorn").exists()
    finally:
        dev.kill_leftovers()


@pytest.mark.timeout(420)
def test_redis_killed_under_dev_comes_back_on_its_port_and_jobs_complete(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    dev = DevRun.start(var_dir, tmp_path / "dev.log", cwd=tmp_path)
    second: DevRun | None = None
    try:
        dev.wait_until_up()
        headers = _sign_up(dev, "ada@example.com")
        assert _ask(dev, headers, "What is a ROS 2 node?")["status"] == "completed"
        port, first_redis = _redis_port(var_dir), dev.redis_pid
        assert first_redis is not None

        os.kill(first_redis, signal.SIGKILL)
        dev.wait_for("restarted the embedded Redis")

        assert dev.redis_pid not in (None, first_redis) and alive(dev.redis_pid or 0)
        assert _redis_port(var_dir) == port
        assert find_embedded_redis(var_dir) == f"redis://127.0.0.1:{port}/0"
        assert _ask(dev, headers, "What is a ROS 2 node?")["status"] == "completed"
        assert dev.process.poll() is None

        # A second stack on the same var/ is refused, naming the first and how to stop it.
        second = DevRun.start(var_dir, tmp_path / "second.log", cwd=tmp_path)
        assert second.process.wait(timeout=60) == 1
        refusal = second.output()
        assert f"pid {dev.process.pid}" in refusal and "bookchat stop" in refusal, refusal
        assert "PORT=" not in refusal, refusal

        stopped = run_bookchat("stop", env=clean_env(VAR_DIR=str(var_dir)), cwd=tmp_path)

        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert dev.process.wait(timeout=30) == 0
        assert dev.leftovers() == [], dev.output()
        assert port_problem(dev.port) is None
        assert find_embedded_redis(var_dir) is None
    finally:
        dev.kill_leftovers()
        if second is not None:
            second.kill_leftovers()


@pytest.mark.timeout(300)
def test_stop_clears_what_a_dead_stack_left_and_dev_refuses_until_then(tmp_path: Path) -> None:
    """Supervisor and lifeline both killed: the next dev names the leftovers, stop ends them."""
    var_dir = tmp_path / "var"
    dev = DevRun.start(var_dir, tmp_path / "dev.log", cwd=tmp_path)
    second: DevRun | None = None
    try:
        dev.wait_until_up()
        lifeline = int((var_dir / "run" / "lifeline.pid").read_text().split()[0])
        os.kill(lifeline, signal.SIGKILL)
        dev.process.kill()
        dev.process.wait(timeout=10)
        assert dev.leftovers() != []

        second = DevRun.start(var_dir, tmp_path / "second.log", cwd=tmp_path)
        assert second.process.wait(timeout=60) == 1
        refusal = second.output()
        assert "bookchat stop" in refusal and "PORT=" not in refusal, refusal
        assert f"pid {dev.redis_pid}" in refusal, refusal

        stopped = run_bookchat("stop", env=clean_env(VAR_DIR=str(var_dir)), cwd=tmp_path)

        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert dev.leftovers() == [], stopped.stdout + stopped.stderr
        assert port_problem(dev.port) is None
        again = run_bookchat("stop", env=clean_env(VAR_DIR=str(var_dir)), cwd=tmp_path)
        assert again.returncode == 0 and "nothing" in again.stdout, again.stdout + again.stderr
    finally:
        dev.kill_leftovers()
        if second is not None:
            second.kill_leftovers()
