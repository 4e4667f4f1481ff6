"""A `bookchat dev` stack seen from outside: stopping what its pid files name, naming a port's
holder. Standard library only: the lifeline imports this module."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from cli.pidfiles import (
    LABELS,
    REDIS,
    WEB,
    WORKER,
    Recorded,
    alive,
    command_line,
    forget,
    group_alive,
    recorded,
    recorded_groups,
)

# As `bookchat dev`'s own shutdown (cli.processes.stop_children): SIGTERM, SIGKILL after this.
GROUP_GRACE = 6.5
REDIS_GRACE = 10.0


def stop_recorded(
    var_dir: Path, say: Callable[[str], None], grace: float = GROUP_GRACE
) -> list[Recorded]:
    """Stop what var/run names and still runs: web and worker, then the embedded Redis."""
    groups = recorded_groups(var_dir)
    for group in groups:
        say(f"stopping {group.describe()}")
        with contextlib.suppress(ProcessLookupError):
            os.kill(group.pid, signal.SIGTERM)  # the leader stops its own workers
    _wait(lambda: not any(group_alive(g.pid, g.started) for g in groups), grace)
    for group in groups:
        if group_alive(group.pid, group.started):
            say(f"{LABELS[group.name]} did not stop within {grace:.0f}s; killing its process group")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group.pid, signal.SIGKILL)
    _wait(lambda: not any(group_alive(g.pid, g.started) for g in groups), 3.0)
    redis = recorded(var_dir, REDIS)
    if redis is not None:
        say(f"stopping {redis.describe()}")
        stop_process(redis.pid)  # SIGTERM: redis-server flushes its append-only file
    forget(var_dir, WEB, WORKER, REDIS)
    return groups + ([redis] if redis else [])


def stop_process(pid: int, grace: float = REDIS_GRACE) -> None:
    """SIGTERM, then SIGKILL if it is still running after `grace` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        if _wait(lambda: not alive(pid), grace):
            return


def _wait(done: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def lock_path(var_dir: Path) -> Path:
    """var/dev.lock, held by a running `bookchat dev` and by its lifeline."""
    return var_dir / "dev.lock"


def lock_free(var_dir: Path) -> bool:
    """Whether no `bookchat dev` (nor its lifeline) holds var/dev.lock right now."""
    try:
        lock = lock_path(var_dir).open("a")
    except OSError:
        return True
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(lock, fcntl.LOCK_UN)
        return True


def wait_for_lock(var_dir: Path, timeout: float) -> bool:
    """Wait until var/dev.lock is free; whether it is."""
    return _wait(lambda: lock_free(var_dir), timeout)


def stop_hint(var_dir: Path) -> str:
    """The command that stops the stack on var/, as the user would type it."""
    if os.environ.get("VAR_DIR"):
        return f"`VAR_DIR={var_dir} bookchat stop`"
    return "`bookchat stop`"


def port_holder(port: int) -> int | None:
    """The pid of a process with a socket bound to this TCP port (Linux /proc), if one is seen."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) > 9 and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{fields[9]}]")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in inodes:
                        return int(entry.name)
    return None


def var_dir_of(pid: int) -> Path | None:
    """The VAR_DIR a process was given (bookchat's children get it from `bookchat dev`)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None
    for item in environ:
        if item.startswith(b"VAR_DIR="):
            return (cwd / os.fsdecode(item[len(b"VAR_DIR=") :])).resolve()
    return None


def describe_pid(pid: int) -> str:
    """'pid 123 (its command line)' for messages."""
    return f"pid {pid} ({command_line(pid)})"
