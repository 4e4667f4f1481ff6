"""A TCP proxy a test can cut or stall, to take a real server away from the app and bring it back.

`cut()` is a server that is gone (connections reset, new ones refused); `stall()` is a server
that hangs (SIGSTOP): connections stay open and new ones are accepted, but nothing is forwarded
either way until `resume()`, which delivers what was sent meanwhile. `blackhole_open()` is a
route to a server that hung for good while a new one took its place: the connections open now
never deliver another byte (until an end closes them), new ones are forwarded.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from types import TracebackType

_CHUNK = 65536


def _reset(sock: socket.socket) -> None:
    # Linger 0: close with a RST, as a host whose server is gone would answer.
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)  # wakes the pump blocked in recv()
    except OSError:
        pass
    sock.close()


class TcpProxy:
    """Forward 127.0.0.1:`port` to an upstream; `cut()` drops connections, `stall()` holds them."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._cut = False
        self._flowing = threading.Event()
        self._flowing.set()
        self._blackholed: set[socket.socket] = set()
        self._accepting = threading.Thread(target=self._accept_loop, daemon=True)

    def start(self) -> TcpProxy:
        """Start accepting connections."""
        self._accepting.start()
        return self

    def cut(self) -> None:
        """Reset every open connection; connections made from now on are reset at once."""
        with self._lock:
            self._cut = True
            dropped, self._open = self._open, set()
        for sock in dropped:
            _reset(sock)

    def restore(self) -> None:
        """Forward new connections again."""
        with self._lock:
            self._cut = False

    def stall(self) -> None:
        """Stop forwarding, in both directions, on open and new connections; keep them open."""
        self._flowing.clear()

    def resume(self) -> None:
        """Forward again, starting with what was sent during the stall."""
        self._flowing.set()

    def blackhole_open(self) -> None:
        """Deliver nothing more on the connections open now; new ones are forwarded."""
        with self._lock:
            self._blackholed |= self._open

    def close(self) -> None:
        """Stop listening and drop every connection."""
        self.cut()
        self.resume()  # wakes pumps and the accept loop held by a stall
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._listener.close()
        self._accepting.join(timeout=5)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _accept_loop(self) -> None:
        while True:
            try:
                client, _address = self._listener.accept()
            except OSError:
                return  # closed
            self._flowing.wait()  # a hung server's kernel still accepts; it just never answers
            if self._cut:
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                refused = self._cut
                if not refused:
                    self._open |= {client, upstream}
            if refused:
                _reset(client)
                _reset(upstream)
                continue
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(_CHUNK):
                self._flowing.wait()  # held, not dropped, while stalled
                if source in self._blackholed:
                    continue  # swallowed; when either end closes, both are reset as usual
                target.sendall(data)
        except OSError:
            pass  # reset by cut() or by either end
        with self._lock:
            mine = {source, target} & self._open
            self._open -= mine
        for sock in mine:
            _reset(sock)
