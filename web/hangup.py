"""Noticing that a stream's reader hung up while the stream waits for events (under gevent).

A stream learns that its reader left only when a write fails: at the next keep-alive at the
earliest, and often the one after (the first write after the peer closed still succeeds). Until
then it holds its slot, its waiter and its place in the open-streams gauge. Under gunicorn's
gevent worker the client's socket is in the WSGI environ: an idle watcher on it fires when the
client closes (or sends anything), and wakes the waiting stream, which ends at once on a close.
Elsewhere (threads, the test client) there is no socket to watch and a failed write ends it.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

_READ = 1  # libev/libuv's READ event


def _gevent_socket() -> bool:
    try:
        from gevent import monkey
    except ImportError:
        return False
    return bool(monkey.is_module_patched("socket"))


class HangUpWatch:
    """Wakes a stream's current wait when its client's socket turns readable."""

    def __init__(self, environ: dict[str, Any]) -> None:
        self._sock: socket.socket | None = environ.get("gunicorn.socket")
        self._watcher: Any = None
        self._wake: threading.Event | None = None
        self._readable = False
        if self._sock is not None and _gevent_socket():
            from gevent import get_hub

            self._watcher = get_hub().loop.io(self._sock.fileno(), _READ)

    def watch(self, wake: threading.Event) -> None:
        """From now on, set `wake` when the client closes (or sends something)."""
        self._wake = wake
        if self._readable:
            wake.set()
        elif self._watcher is not None and not self._watcher.active:
            self._watcher.start(self._on_readable)

    def hung_up(self) -> bool:
        """Whether the client closed its end (looked at only once its socket turned readable)."""
        if not self._readable or self._sock is None:
            return False
        try:
            # Readable, so this does not block: b"" is the client's close.
            peeked = self._sock.recv(1, socket.MSG_PEEK)
        except OSError:
            return True
        if peeked:
            # The client sent bytes (a pipelined request): stop watching, a failed write will do.
            self._readable = False
            self.close()
            return False
        return True

    def close(self) -> None:
        """Stop watching (the connection goes back to the server for its next request)."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()
            watcher.close()

    def _on_readable(self) -> None:
        # In gevent's hub: no blocking here, and gevent's Event may be set from it.
        if self._watcher is not None:
            self._watcher.stop()
        self._readable = True
        if self._wake is not None:
            self._wake.set()
