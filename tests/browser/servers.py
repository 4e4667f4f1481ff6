"""What the browser tests run against: gunicorn serving the API, host pages, a stream cutter."""

from __future__ import annotations

import contextlib
import http.server
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

from cli.processes import web_command
from common.platform.settings import Settings
from tests.support.stack import REPO_ROOT, settings_env
from tests.support.tcp_proxy import TcpProxy

# A Docusaurus-like page on another origin that adds the widget with one script tag.
HOST_PAGE = """<!doctype html>
<html lang="en" data-theme="light"><head><meta charset="utf-8"><title>Other book</title></head>
<body><main><h1>Nodes</h1>
<p id="passage">A ROS 2 node is a single participant in a ROS 2 system that performs one job.</p>
</main>
<script async src="{api}/widget.js" data-api="{api}" data-title="Book chat"></script>
</body></html>
"""


class Gunicorn:
    """The API as `bookchat web` runs it (gevent gunicorn), on settings.port."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.url = f"http://127.0.0.1:{settings.port}"
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            web_command(settings),
            env=settings_env(settings),
            cwd=REPO_ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.log_path = log_path
        self._wait_until_up()

    def _wait_until_up(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log_path.read_text()[-3000:]}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url}/healthz", timeout=2),
            ):
                return
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer: {self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        """Stop gunicorn and wait for it."""
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


class HostPage:
    """Pages on their own origin (127.0.0.1:<port>) that embed the widget of an API.

    `pages` maps a path to its HTML, with `{api}` standing for the API's address; "/" is
    HOST_PAGE, and tests add their own.
    """

    def __init__(self) -> None:
        page = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                template = page.pages.get(self.path.split("?")[0])
                if template is None:
                    self.send_error(404)
                    return
                body = template.replace("{api}", page.api).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                pass

        self.api = ""
        self.pages: dict[str, str] = {"/": HOST_PAGE}
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add_page(self, html: str) -> str:
        """Serve this HTML at a new path; its URL."""
        path = f"/page-{len(self.pages)}"
        self.pages[path] = html
        return self.origin + path

    def set_api(self, api: str) -> None:
        """Embed the widget of the API at this address."""
        self.api = api

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


class StreamCutter(TcpProxy):
    """A TcpProxy that, once armed, drops every connection right after the first answer delta."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        super().__init__(upstream_host, upstream_port)
        self.armed = False
        self.cuts = 0

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            from_server = source.getpeername() == self.upstream
            while data := source.recv(65536):
                at = data.find(b"event: delta") if from_server and self.armed else -1
                end = data.find(b"\n\n", at) if at >= 0 else -1
                if end < 0:
                    target.sendall(data)
                    continue
                self.armed = False
                target.sendall(data[: end + 2])  # the first delta, and nothing after it
                time.sleep(0.3)  # let the browser read it before the reset
                self.cuts += 1
                self.cut()
                self.restore()
                return
        except OSError:
            pass
        super()._pump(source, target)  # closes both ends (its recv fails at once)
