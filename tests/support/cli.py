"""Running `bookchat` as a user would, and checking that it leaves no process behind."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from cli.processes import BOOKCHAT
from tests.support.stack import REPO_ROOT

READY_LINE = "bookchat is up: http://127.0.0.1:"


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**values: str) -> dict[str, str]:
    """The environment of a fresh machine: no bookchat configuration at all."""
    names = ("REDIS_URL", "DATABASE_URL", "QDRANT_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL")
    env = {k: v for k, v in os.environ.items() if k not in names}
    return {**env, **values}


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name: state, ppid, pgrp, session, ..."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def children_of(pid: int) -> list[int]:
    """Live processes whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields and fields[0] != "Z" and int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def in_sessions(sessions: set[int]) -> list[str]:
    """Live processes in any of these sessions, as 'pid command line'."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields and fields[0] != "Z" and int(fields[3]) in sessions:
                with contextlib.suppress(OSError):
                    command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                    found.append(f"{entry.name} {command}")
    return found


def redis_servers_in(folder: Path) -> list[int]:
    """redis-server processes working in `folder` or below (the embedded one runs in var/redis)."""
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if (
                entry.name.isdigit()
                and b"redis-server" in (entry / "cmdline").read_bytes()
                and (entry / "cwd").resolve().is_relative_to(folder.resolve())
            ):
                found.append(int(entry.name))
    return found


@dataclass
class DevRun:
    """One `bookchat dev` in a session of its own, as a terminal would run it."""

    var_dir: Path
    port: int
    log_path: Path
    process: subprocess.Popen[bytes]
    sessions: set[int] = field(default_factory=set)
    redis_pid: int | None = None

    @classmethod
    def start(cls, var_dir: Path, log_path: Path, cwd: Path, **env: str) -> DevRun:
        """Start `bookchat dev` with a fresh port, nothing configured but VAR_DIR."""
        port = free_port()
        values = {"VAR_DIR": str(var_dir), "PORT": str(port), **env}
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [*BOOKCHAT, "dev"],
                env=clean_env(**values),
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return cls(var_dir, port, log_path, process)

    @property
    def base_url(self) -> str:
        """The API's address."""
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        """Everything dev and its children printed so far."""
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 180) -> None:
        """Wait until the output shows `text`, then note the processes dev started."""
        deadline = time.monotonic() + timeout
        while text not in self.output():
            assert self.process.poll() is None, f"dev exited early:\n{self.output()[-3000:]}"
            assert time.monotonic() < deadline, f"no {text!r} from dev:\n{self.output()[-3000:]}"
            time.sleep(0.1)
        self.note_processes()
        assert len(self.sessions) == 3, self.sessions  # worker, gunicorn, lifeline: 3 sessions
        assert self.redis_pid is not None

    def note_processes(self) -> None:
        """Remember dev's children (each leads a session) and the embedded redis-server."""
        self.sessions |= set(children_of(self.process.pid))
        with contextlib.suppress(OSError, ValueError):
            self.redis_pid = int((self.var_dir / "redis" / "redis.pid").read_text())

    def wait_until_up(self, timeout: float = 180) -> None:
        """Wait for the ready line."""
        self.wait_for(READY_LINE, timeout)

    def interrupt(self, whole_group: bool) -> None:
        """Ctrl-C: to dev alone, or to its whole process group as a terminal sends it."""
        if whole_group:
            os.killpg(self.process.pid, signal.SIGINT)
        else:
            self.process.send_signal(signal.SIGINT)

    def leftovers(self) -> list[str]:
        """Processes dev started that are still running."""
        left = in_sessions(self.sessions)
        if self.redis_pid is not None and alive(self.redis_pid):
            left.append(f"{self.redis_pid} the embedded redis-server")
        return left

    def kill_leftovers(self) -> None:
        """Clean up after a failed test: no process of ours may outlive it."""
        if self.process.poll() is None:
            self.note_processes()
            self.process.send_signal(signal.SIGTERM)  # dev stops what it started ...
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=20)
        for pid in [self.process.pid, *self.sessions]:  # ... and what it could not, we do
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        if self.redis_pid is not None and alive(self.redis_pid):
            os.kill(self.redis_pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


def run_bookchat(
    *args: str,
    env: dict[str, str],
    cwd: Path = REPO_ROOT,
    timeout: float = 120,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `bookchat ARGS` to completion (with `input` on its stdin)."""
    return subprocess.run(
        [*BOOKCHAT, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )
