"""`bookchat dev` end to end: up only when it answers, and Ctrl-C stops everything it started."""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from bench.openai_sim import SimConfig, start_simulator
from cli.embedded_redis import find_embedded_redis
from cli.pidfiles import WORKER, alive, recorded
from cli.processes import port_problem
from tests.support.cli import DevRun, free_port

pytestmark = pytest.mark.slow  # real-process fault runs: left out of `make test-fast`

# Generous: dev itself aims at under 10 s.
STOP_TIMEOUT = 15


def _sign_up(http: httpx.Client, email: str) -> dict[str, str]:
    signup = http.post("/v1/auth/signup", json={"email": email, "password": "correct horse"})
    assert signup.status_code == 201, signup.text
    return {"Authorization": f"Bearer {signup.json()['access_token']}"}


def _submit(http: httpx.Client, headers: dict[str, str], message: str) -> str:
    submitted = http.post("/v1/chat/jobs", headers=headers, json={"message": message})
    assert submitted.status_code == 202, submitted.text
    return str(submitted.headers["Location"])


def _stop_and_check(dev: DevRun, whole_group: bool, twice: bool = False) -> None:
    """Ctrl-C, then: dev exits 0 in time, and nothing it started is left, port and Redis free."""
    dev.interrupt(whole_group)
    if twice:
        dev.interrupt(whole_group)  # impatient users press it again: shutdown must go on
    try:
        code = dev.process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"dev did not stop in time:\n{dev.output()[-3000:]}") from None
    assert code == 0, dev.output()[-3000:]
    assert dev.leftovers() == [], dev.output()[-3000:]
    assert port_problem(dev.port) is None, f"port {dev.port} is still taken"
    assert find_embedded_redis(dev.var_dir) is None, "embedded Redis left running"


class Traffic:
    """Clients that keep asking, each waiting on a long-poll or an event stream, until stopped."""

    def __init__(self, dev: DevRun, headers: dict[str, str], clients: int = 16) -> None:
        self.dev, self.headers = dev, headers
        self.submitted = 0
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.threads = [
            threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(clients)
        ]
        for thread in self.threads:
            thread.start()

    def _client(self, n: int) -> None:
        try:
            with httpx.Client(base_url=self.dev.base_url, timeout=40) as http:
                while not self.done.is_set():
                    location = _submit(http, self.headers, f"What is a ROS 2 node? ({n})")
                    with self.lock:
                        self.submitted += 1
                    if n % 2:
                        http.get(location + "?wait=30", headers=self.headers)
                    else:
                        with http.stream("GET", location + "/events", headers=self.headers) as sse:
                            for _ in sse.iter_text():
                                pass
        except (httpx.HTTPError, AssertionError):
            pass  # the server going away mid-request is the point

    def wait_for(self, jobs: int, timeout: float = 60) -> None:
        """Until this many questions were submitted (requests keep going meanwhile)."""
        deadline = time.monotonic() + timeout
        while self.submitted < jobs:
            assert time.monotonic() < deadline, f"only {self.submitted} jobs submitted"
            time.sleep(0.1)

    def stop(self) -> None:
        """Let the clients end (their server is gone by now)."""
        self.done.set()
        for thread in self.threads:
            thread.join(timeout=45)


@pytest.mark.timeout(900)
def test_ctrl_c_stops_everything_five_times_in_a_row(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    # (signal the whole group as a terminal does, an answer in flight, heavy traffic, twice)
    runs = [
        (False, False, False, False),
        (True, True, False, False),
        (True, False, True, False),
        (True, False, False, True),
        (False, True, True, False),
    ]
    for number, (whole_group, in_flight, traffic, twice) in enumerate(runs, 1):
        # The traffic is many submits by one reader: past the default per-user limit and, on a
        # slow machine, past the daily token quota (each waiting question holds some tokens).
        dev = DevRun.start(
            var_dir,
            tmp_path / f"dev{number}.log",
            cwd=tmp_path,
            RATE_LIMIT_SUBMIT="10000/minute",
            USER_DAILY_TOKENS="0",
        )
        clients: Traffic | None = None
        try:
            dev.wait_until_up()
            with httpx.Client(base_url=dev.base_url, timeout=30) as http:
                headers = _sign_up(http, f"reader{number}@example.com")
                if traffic:
                    clients = Traffic(dev, headers)
                    clients.wait_for(jobs=60)
                if in_flight:
                    _submit(http, headers, "What is a ROS 2 node?")
            _stop_and_check(dev, whole_group, twice)
        finally:
            if clients is not None:
                clients.stop()
            dev.kill_leftovers()


@pytest.mark.timeout(240)
def test_ctrl_c_while_the_textbook_is_indexed_stops_everything(tmp_path: Path) -> None:
    dev = DevRun.start(tmp_path / "var", tmp_path / "dev.log", cwd=tmp_path)
    try:
        dev.wait_for("indexing the textbook in ")
        _stop_and_check(dev, whole_group=True)
    finally:
        dev.kill_leftovers()
    assert "bookchat is up" not in dev.output()


@pytest.mark.timeout(240)
def test_dev_answers_the_first_question_once_it_says_it_is_up(tmp_path: Path) -> None:
    """On a fresh machine the ready line waits for the textbook, so nothing needs retrying."""
    dev = DevRun.start(tmp_path / "var", tmp_path / "dev.log", cwd=tmp_path)
    try:
        dev.wait_until_up()
        output = dev.output()
        assert output.index("ingest completed: 4 changed") < output.index("bookchat is up")
        with httpx.Client(base_url=dev.base_url, timeout=30) as http:
            headers = _sign_up(http, "ada@example.com")
            location = _submit(http, headers, "What is a ROS 2 node?")
            job = http.get(location + "?wait=30", headers=headers).json()
            assert job["status"] == "completed", job
            assert job["citations"][0]["heading"] == "What is a node?"
            with http.stream("GET", f"/v1/chat/jobs/{job['id']}/events", headers=headers) as sse:
                assert sse.headers["content-type"].startswith("text/event-stream")
                body = "".join(sse.iter_text())
            last_frame = body.strip().split("\n\n")[-1]
            assert "event: delta" in body
            assert "event: done" in last_frame and '"status": "completed"' in last_frame
        _stop_and_check(dev, whole_group=True, twice=True)
    finally:
        dev.kill_leftovers()
    assert (tmp_path / "var" / "redis" / "appendonly.aof").exists()


@pytest.mark.timeout(240)
def test_dev_without_its_textbook_runs_and_says_it_is_not_indexed(tmp_path: Path) -> None:
    missing = tmp_path / "no-book"
    dev = DevRun.start(
        tmp_path / "var", tmp_path / "dev.log", cwd=tmp_path, TEXTBOOK_PATH=str(missing)
    )
    try:
        dev.wait_until_up()
        output = dev.output()
        assert f"indexing the textbook in {missing}" in output
        assert (
            "warning: the textbook is not indexed "
            "(the path is not a folder under the configured INGEST_ROOTS)"
        ) in output
        _stop_and_check(dev, whole_group=False)
    finally:
        dev.kill_leftovers()


@pytest.mark.timeout(120)
def test_dev_refuses_a_port_that_is_taken(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", free_port()))
        holder.listen()
        port = holder.getsockname()[1]
        dev = DevRun.start(tmp_path / "var", tmp_path / "dev.log", cwd=tmp_path, PORT=str(port))
        try:
            code = dev.process.wait(timeout=60)
        finally:
            dev.kill_leftovers()
    output = dev.output()
    assert code != 0
    assert f"port {port} on 127.0.0.1 is not free" in output, output
    assert "make dev`" in output and "`PORT=" in output, output
    assert f"held by pid {os.getpid()} (" in output, output  # names the holder: this test
    assert "bookchat is up" not in output
    assert not (tmp_path / "var" / "redis").exists(), "an embedded Redis was started"


@pytest.mark.timeout(120)
def test_dev_says_so_when_the_web_server_exits_early(tmp_path: Path) -> None:
    # gunicorn rejects the unknown option and exits at once.
    dev = DevRun.start(
        tmp_path / "var", tmp_path / "dev.log", cwd=tmp_path, GUNICORN_CMD_ARGS="--no-such-option"
    )
    try:
        code = dev.process.wait(timeout=90)
    finally:
        dev.kill_leftovers()
    output = dev.output()
    assert code == 1, output[-3000:]
    assert "the web process exited before bookchat was up" in output, output[-3000:]
    assert "bookchat is up" not in output
    assert find_embedded_redis(tmp_path / "var") is None, "embedded Redis left running"


@pytest.mark.timeout(60)
def test_a_second_dev_on_the_same_var_dir_is_refused(tmp_path: Path) -> None:
    # The test holds var/dev.lock as a running dev would.
    var_dir = tmp_path / "var"
    var_dir.mkdir()
    with (var_dir / "dev.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        dev = DevRun.start(var_dir, tmp_path / "dev.log", cwd=tmp_path)
        try:
            code = dev.process.wait(timeout=30)
        finally:
            dev.kill_leftovers()
    assert code == 1
    assert f"bookchat dev is already running for {var_dir}" in dev.output()
    assert not (var_dir / "redis").exists()


def _worker_pid(dev: DevRun, other_than: int = 0, timeout: float = 30) -> int:
    """The worker's pid as var/run records it, once it is not `other_than`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = recorded(dev.var_dir, WORKER)
        if found is not None and found.pid != other_than and alive(found.pid):
            return found.pid
        assert dev.process.poll() is None, dev.output()[-3000:]
        time.sleep(0.05)
    raise AssertionError(f"no new worker after {other_than}:\n{dev.output()[-3000:]}")


@pytest.mark.timeout(300)
def test_dev_restarts_a_worker_killed_mid_answer_and_stops_on_a_crash_loop(
    tmp_path: Path,
) -> None:
    """A class keeps its answers after the worker is OOM-killed; a worker that keeps dying
    stops dev with the reason instead of restarting forever."""
    with start_simulator(SimConfig(ttft_s=3.0)) as sim:
        dev = DevRun.start(
            tmp_path / "var", tmp_path / "dev.log", cwd=tmp_path,
            OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=f"{sim.url}/v1",
        )  # fmt: skip
        try:
            dev.wait_until_up()
            with httpx.Client(base_url=dev.base_url, timeout=30) as http:
                headers = _sign_up(http, "grace@example.com")
                location = _submit(http, headers, "What is a ROS 2 node?")
                deadline = time.monotonic() + 60
                while not any(r["endpoint"] == "/v1/chat/completions" for r in sim.log()):
                    assert time.monotonic() < deadline, "the model was never asked"
                    time.sleep(0.05)
                first = _worker_pid(dev)
                os.kill(first, signal.SIGKILL)  # mid-answer: the model has not replied yet
                second = _worker_pid(dev, other_than=first)
                deadline = time.monotonic() + 180
                job = http.get(location + "?wait=30", headers=headers).json()
                while job["status"] in ("queued", "in_progress") and time.monotonic() < deadline:
                    job = http.get(location + "?wait=30", headers=headers).json()
            assert job["status"] == "completed", job
            assert "the worker process exited with code -9; restarted it" in dev.output()
            assert dev.process.poll() is None, "dev stopped after one crash"
            # Three more deaths within the minute: not a blip, dev stops and says why.
            killed = second
            for _ in range(3):
                os.kill(killed, signal.SIGKILL)
                try:
                    killed = _worker_pid(dev, other_than=killed, timeout=10)
                except AssertionError:
                    break  # dev stopped rather than restart it again
            code = dev.process.wait(timeout=STOP_TIMEOUT)
            output = dev.output()
            assert code == 1, output[-3000:]
            assert "4 times within 60s" in output and "stopping the others" in output, output
            assert dev.leftovers() == [], output[-3000:]
        finally:
            dev.kill_leftovers()
