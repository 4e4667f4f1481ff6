"""Pid files under var/run: which `bookchat dev` owns a var/, and what it started.

Each file holds a pid and that process's start time (clock ticks since boot, from
/proc/PID/stat): a pid reused by another process has another start time, so a stale file never
names an unrelated process. Standard library only: the lifeline imports this module.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

# The supervisor, its lifeline, the process-group leaders it started, its embedded Redis.
SUPERVISOR, LIFELINE, WEB, WORKER, REDIS = "dev", "lifeline", "web", "worker", "redis"
GROUPS = (WEB, WORKER)
LABELS = {
    SUPERVISOR: "bookchat dev",
    LIFELINE: "its lifeline",
    WEB: "the web server",
    WORKER: "the worker",
    REDIS: "the embedded Redis",
}


@dataclass(frozen=True)
class Recorded:
    """A process named in a pid file."""

    name: str
    pid: int
    started: str

    def describe(self) -> str:
        """'the web server, pid 123 (python -m gunicorn ...)' for messages."""
        return f"{LABELS.get(self.name, self.name)}, pid {self.pid} ({command_line(self.pid)})"


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name: state, ppid, pgrp, ..., starttime."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot, or None if it is gone."""
    fields = _stat(pid)
    return fields[19] if fields and len(fields) > 19 else None


def alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def command_line(pid: int) -> str:
    """The process's command line, shortened, for messages."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    text = raw.replace(b"\0", b" ").decode(errors="replace").strip()
    return text if len(text) <= 100 else text[:97] + "..."


def run_dir(var_dir: Path) -> Path:
    """var/run, where the pid files live."""
    return var_dir / "run"


def record(var_dir: Path, name: str, pid: int) -> None:
    """Write NAME.pid for this running process."""
    folder = run_dir(var_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.pid"
    temporary = path.with_suffix(".tmp")
    temporary.write_text(f"{pid} {start_time(pid) or '?'}\n")
    temporary.replace(path)  # a reader never sees half a file


def forget(var_dir: Path, *names: str) -> None:
    """Remove these pid files."""
    for name in names:
        (run_dir(var_dir) / f"{name}.pid").unlink(missing_ok=True)


def recorded(var_dir: Path, name: str) -> Recorded | None:
    """The process NAME.pid names, if that very process still runs."""
    try:
        pid_text, started = (run_dir(var_dir) / f"{name}.pid").read_text().split()
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    if not alive(pid) or start_time(pid) != started:
        return None
    return Recorded(name, pid, started)


def group_alive(pgid: int, started: str) -> bool:
    """Whether any process of this process group (led by the process started then) is left."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if alive(pgid):
        return start_time(pgid) == started  # else the pid now names another group's leader
    # The leader is gone or a zombie: look for members that outlived it.
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields and fields[0] != "Z" and fields[2] == str(pgid):
                return True
    return False


def recorded_groups(var_dir: Path) -> list[Recorded]:
    """The process groups (web, worker) a stack on var/ started that still have a process.

    A group outlives its leader when the leader died first (gunicorn's workers), so a dead
    leader whose group has members still counts; pids are not reused while their group exists.
    """
    found = []
    for name in GROUPS:
        with contextlib.suppress(OSError, ValueError):
            pid_text, started = (run_dir(var_dir) / f"{name}.pid").read_text().split()
            if group_alive(int(pid_text), started):
                found.append(Recorded(name, int(pid_text), started))
    return found
