"""Stopping children: SIGTERM first, then SIGKILL for the whole process group, orphans too."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import time
from pathlib import Path

from cli.processes import Child, port_problem, start_child, stop_children
from tests.support.cli import alive, free_port

# A leader that dies on SIGTERM and leaves behind a worker that ignores it: gunicorn's worker
# whose arbiter is gone, the case that used to keep the port.
ORPHANING_LEADER = """
import os, signal, sys, time
pid = os.fork()
if pid == 0:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        time.sleep(1)
open(sys.argv[1], "w").write(str(pid))
time.sleep(3600)
"""

STUBBORN_LEADER = """
import signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
open(sys.argv[1], "w").write("ready")
time.sleep(3600)
"""


def _start_python(script: str, marker: Path) -> Child:
    return start_child("test", [sys.executable, "-c", script, str(marker)], dict(os.environ))


def _kill_group(child: Child) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    child.process.wait(timeout=5)


def _wait_for_file(path: Path) -> str:
    deadline = time.monotonic() + 20
    while not (path.exists() and path.read_text()):
        assert time.monotonic() < deadline, f"{path} never written"
        time.sleep(0.02)
    return path.read_text()


def test_an_orphaned_worker_ignoring_sigterm_is_killed_with_its_group(tmp_path: Path) -> None:
    marker = tmp_path / "worker.pid"
    child = _start_python(ORPHANING_LEADER, marker)
    try:
        orphan = int(_wait_for_file(marker))
        assert os.getpgid(orphan) == child.pid  # the child leads a group of its own

        stop_children([child], grace=1.0, kill_wait=5.0)

        assert child.process.returncode == -signal.SIGTERM  # the leader got the polite signal
        assert not alive(orphan)
    finally:
        _kill_group(child)


def test_a_leader_ignoring_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    marker = tmp_path / "ready"
    child = _start_python(STUBBORN_LEADER, marker)
    try:
        _wait_for_file(marker)

        started = time.monotonic()
        stop_children([child], grace=1.0, kill_wait=5.0)

        assert child.process.returncode == -signal.SIGKILL
        assert time.monotonic() - started < 5
    finally:
        _kill_group(child)


def test_children_have_their_own_session(tmp_path: Path) -> None:
    marker = tmp_path / "ready"
    child = _start_python(STUBBORN_LEADER, marker)
    try:
        _wait_for_file(marker)
        assert os.getsid(child.pid) == child.pid != os.getsid(0)
    finally:
        _kill_group(child)


def test_port_problem_names_a_port_in_use() -> None:
    port = free_port()
    assert port_problem(port) is None
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        assert port_problem(port) is not None
