"""Before `bookchat dev` starts: one stack per var/, and refusals that name who is in the way.

A refusal names the process that holds var/ or the port and how to stop it. It suggests another
port only once var/ is known to be free of any other stack's processes, so it never leads to a
second stack on the same var/.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from cli.embedded_redis import find_embedded_redis
from cli.pidfiles import LIFELINE, REDIS, SUPERVISOR, record, recorded, recorded_groups
from cli.processes import port_problem
from cli.redis_keeper import redis_pid
from cli.stack import describe_pid, lock_path, port_holder, stop_hint, var_dir_of, wait_for_lock

# A lifeline stops a dead supervisor's processes within about 10 s; a new dev waits for it.
LIFELINE_WAIT = 30.0


def claim_var_dir(var_dir: Path, say: Callable[[str], None]) -> TextIO | str:
    """The lock on var/dev.lock (and var/run/dev.pid written), or why var/ is not ours."""
    var_dir.mkdir(parents=True, exist_ok=True)
    lock = lock_path(var_dir).open("w")
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            record(var_dir, SUPERVISOR, os.getpid())
            return lock
        running = recorded(var_dir, SUPERVISOR)
        lifeline = recorded(var_dir, LIFELINE)
        if running is None and lifeline is not None:
            say(
                f"the previous bookchat dev on {var_dir} is gone; waiting for its lifeline "
                f"(pid {lifeline.pid}) to stop what it started ..."
            )
            if wait_for_lock(var_dir, LIFELINE_WAIT):
                continue
        lock.close()
        holder = running.describe() if running else f"another process holds {lock_path(var_dir)}"
        return (
            f"bookchat dev is already running for {var_dir}: {holder}. Stop it with "
            f"{stop_hint(var_dir)} (or Ctrl-C where it runs), then start again."
        )


def leftovers_refusal(var_dir: Path, embedded_redis: bool) -> str | None:
    """Why var/ is still in use by processes no running `bookchat dev` watches, or None."""
    left = [group.describe() for group in recorded_groups(var_dir)]
    if embedded_redis:
        url = find_embedded_redis(var_dir)
        if url is not None:
            started = recorded(var_dir, REDIS)
            pid = started.pid if started else redis_pid(url)
            left.append(f"the embedded Redis {describe_pid(pid)} on {url}")
    if not left:
        return None
    return (
        f"bookchat dev: {var_dir} is still in use by processes of an earlier bookchat: "
        f"{'; '.join(left)}. Stop them with {stop_hint(var_dir)}, then start again."
    )


def port_refusal(port: int, var_dir: Path, another_port: Callable[[int], int]) -> str | None:
    """Why the web server cannot listen on `port`, naming the holder, or None if it can."""
    problem = port_problem(port)
    if problem is None:
        return None
    start = f"bookchat dev: port {port} on 127.0.0.1 is not free ({problem})"
    holder = port_holder(port)
    if holder is None:
        return (
            f"{start}; stop what holds it or give this stack another port: "
            f"`PORT={another_port(port)} make dev`"
        )
    if var_dir_of(holder) == var_dir.resolve():
        # Started by an earlier bookchat on this var/ and not recorded: never a second stack.
        try:
            stop = f"kill -TERM -- -{os.getpgid(holder)}"
        except ProcessLookupError:
            stop = f"kill {holder}"
        return (
            f"{start}: it is held by {describe_pid(holder)}, left over from an earlier bookchat "
            f"on {var_dir}. Stop it with `{stop}`, then start again."
        )
    return (
        f"{start}: it is held by {describe_pid(holder)}. Stop that process (`kill {holder}`) "
        f"or give this stack another port: `PORT={another_port(port)} make dev`"
    )
