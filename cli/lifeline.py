"""The lifeline: a tiny process that stops a `bookchat dev` stack once its supervisor is gone.

The supervisor keeps the only write end of a pipe whose read end is the lifeline's stdin.
However the supervisor ends (Ctrl-C, a crash, `kill -9`), the kernel closes that end and the
lifeline reads end-of-file. After a clean shutdown the supervisor wrote "done" first; otherwise
the lifeline stops what var/run names, as `bookchat stop` would: SIGTERM to the web and worker
groups, SIGKILL to what is left of them after a grace, then the embedded Redis (also one that
was started but not yet recorded, when the supervisor owned it). It inherits
var/dev.lock, so no new `bookchat dev` starts on this var/ before it is done.

Why not PR_SET_PDEATHSIG in each child: it fires when the *thread* that forked the child ends,
reaches only direct children (not the daemonized redis-server, whose parent exits at once),
sends one signal a child may ignore or hang on with nobody left to escalate, and needs a
preexec_fn, which is unsafe once threads exist. The lifeline needs nothing from the children.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TextIO

from cli.pidfiles import LIFELINE, SUPERVISOR, forget, record
from cli.stack import stop_recorded

DONE = b"done"
OWNS_REDIS = "--owns-redis"


class Lifeline:
    """The supervisor's side: the pipe's write end and the lifeline process."""

    def __init__(self, process: subprocess.Popen[bytes], write_end: int) -> None:
        self.process = process
        self.write_end: int | None = write_end

    @classmethod
    def start(cls, var_dir: Path, lock: TextIO, owns_redis: bool) -> Lifeline:
        """Start the lifeline in a session of its own; it shares var/dev.lock with us."""
        read_end, write_end = os.pipe()  # neither end is inherited by later children
        owns = [OWNS_REDIS] if owns_redis else []
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "cli.lifeline", str(var_dir.resolve()), *owns],
                stdin=read_end,
                pass_fds=(lock.fileno(),),
                start_new_session=True,
            )
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        record(var_dir, LIFELINE, process.pid)
        return cls(process, write_end)

    def exited(self) -> int | None:
        """The lifeline's exit code, or None while it runs."""
        return self.process.poll()

    def release(self, timeout: float = 10.0) -> None:
        """Everything is stopped: tell the lifeline, and wait until it (and its lock) is gone."""
        if self.write_end is None:
            return
        with contextlib.suppress(OSError):  # a lifeline that died cannot read it
            os.write(self.write_end, DONE)
        os.close(self.write_end)
        self.write_end = None
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _say(message: str) -> None:
    # The terminal may be gone with the supervisor; stopping matters more than saying so.
    with contextlib.suppress(OSError, ValueError):
        print(f"bookchat dev lifeline: {message}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    """Wait for the supervisor's end; unless it said "done", stop what it started."""
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)
    var_dir = Path(argv[0])
    received = b""
    while chunk := os.read(0, 64):
        received += chunk
    if received == DONE:
        return 0
    _say("bookchat dev is gone; stopping what it started")
    stopped = stop_recorded(var_dir, _say)
    if OWNS_REDIS in argv[1:]:
        # One started or restarted just before the supervisor died, before it was recorded.
        from cli.embedded_redis import find_embedded_redis, stop_embedded_redis

        if find_embedded_redis(var_dir) is not None:
            _say(f"stopping the embedded Redis under {var_dir / 'redis'}")
            stop_embedded_redis(var_dir)
    forget(var_dir, SUPERVISOR, LIFELINE)
    _say(f"stopped {len(stopped)} process(es) for {var_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
