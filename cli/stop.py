"""`bookchat stop`: stop the stack that owns a var/, from the pid files there."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from cli.embedded_redis import find_embedded_redis, stop_embedded_redis
from cli.pidfiles import LIFELINE, SUPERVISOR, forget, recorded
from cli.stack import lock_free, stop_recorded, wait_for_lock

# `bookchat dev` stops in about 10 s (6.5 s for its children, then Redis); this is its bound.
DEV_STOP_TIMEOUT = 30.0


def _say(message: str) -> None:
    print(f"bookchat stop: {message}", flush=True)


def stop_dev(var_dir: Path, timeout: float = DEV_STOP_TIMEOUT) -> int:
    """Stop the `bookchat dev` of var/ and whatever its pid files name; 1 if something is left."""
    var_dir = var_dir.resolve()
    stopped_any = False
    supervisor = recorded(var_dir, SUPERVISOR)
    if supervisor is not None:
        stopped_any = True
        _say(f"stopping {supervisor.describe()} ...")
        with contextlib.suppress(ProcessLookupError):
            os.kill(supervisor.pid, signal.SIGTERM)  # as Ctrl-C: it stops everything in order
        if not wait_for_lock(var_dir, timeout):
            _say(f"it did not stop within {timeout:.0f}s; killing it (its lifeline stops the rest)")
            with contextlib.suppress(ProcessLookupError):
                os.kill(supervisor.pid, signal.SIGKILL)
            wait_for_lock(var_dir, timeout)
    elif not lock_free(var_dir) and recorded(var_dir, LIFELINE) is not None:
        _say("the lifeline of a bookchat dev that is gone is stopping its processes; waiting")
        wait_for_lock(var_dir, timeout)
    # What no supervisor or lifeline stopped: both were killed, or they are still at it.
    stopped_any |= bool(stop_recorded(var_dir, _say))
    if find_embedded_redis(var_dir) is not None:
        # Also one that `bookchat web` or `bookchat worker` started: var/ is being stopped.
        _say(f"stopping the embedded Redis under {var_dir / 'redis'}")
        stop_embedded_redis(var_dir)
        stopped_any = True
    if not lock_free(var_dir) or find_embedded_redis(var_dir) is not None:
        _say(f"something of bookchat still runs for {var_dir}; see `ps -ef | grep bookchat`")
        return 1
    forget(var_dir, SUPERVISOR, LIFELINE)
    _say(f"stopped bookchat for {var_dir}" if stopped_any else f"nothing runs for {var_dir}")
    return 0
