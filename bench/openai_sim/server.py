"""Run the simulator in a background thread (tests) or in the foreground (CLI)."""

from __future__ import annotations

import argparse
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .app import create_app, get_state
from .config import SimConfig
from .state import SimState


class QuietRequestHandler(WSGIRequestHandler):
    """A request handler that writes no access log line per request."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Skip the access log."""


class SimulatorHandle:
    """A running simulator: its base URL, live config, log access and shutdown."""

    def __init__(self, server: BaseWSGIServer, state: SimState, thread: threading.Thread) -> None:
        self._server = server
        self._state = state
        self._thread = thread
        self.host = server.host
        self.port = server.port
        self.url = f"http://{self.host}:{self.port}"

    @property
    def config(self) -> SimConfig:
        """The live configuration; change it with update_config for thread safety."""
        return self._state.config

    def update_config(self, **changes: Any) -> None:
        """Validate and apply a partial configuration change at run time."""
        self._state.update_config(changes)

    def log(self, since: float | None = None) -> list[dict[str, Any]]:
        """Return the request records, only those with t >= since when given."""
        return self._state.log(since)

    def reset(self) -> None:
        """Clear the log and refill the rate-limit buckets."""
        self._state.reset()

    def stop(self) -> None:
        """Wake sleeping requests, stop serving and wait for the server thread."""
        self._state.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SimulatorHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_simulator(
    config: SimConfig | None = None, host: str = "127.0.0.1", port: int = 0, quiet: bool = True
) -> SimulatorHandle:
    """Serve a simulator on host:port (0 = any free port) in a daemon thread."""
    app = create_app(config)
    handler = QuietRequestHandler if quiet else None
    server = make_server(host, port, app, threaded=True, request_handler=handler)
    # A short poll interval keeps stop() fast; the default 0.5 s adds up across tests.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="openai-sim", daemon=True
    )
    thread.start()
    return SimulatorHandle(server, get_state(app), thread)


def parse_args(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, SimConfig]:
    """Parse CLI arguments into the bind address and a SimConfig."""
    d = SimConfig()
    p = argparse.ArgumentParser(prog="python -m bench.openai_sim", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8088)
    p.add_argument("--model", default=d.model)
    p.add_argument("--rpm", type=int, default=d.rpm, help="requests per minute, 0 = unlimited")
    p.add_argument("--tpm", type=int, default=d.tpm, help="tokens per minute, 0 = unlimited")
    p.add_argument("--ttft", type=float, default=d.ttft_s, help="time to first token, seconds")
    p.add_argument("--per-token", type=float, default=d.per_token_s, help="seconds per token")
    p.add_argument("--embedding-dim", type=int, default=d.embedding_dim)
    p.add_argument("--error-500-rate", type=float, default=d.error_500_rate)
    p.add_argument("--error-503-rate", type=float, default=d.error_503_rate)
    p.add_argument("--timeout-rate", type=float, default=d.timeout_rate)
    p.add_argument("--timeout-sleep", type=float, default=d.timeout_sleep_s)
    p.add_argument("--insufficient-quota", action="store_true")
    p.add_argument(
        "--charge-rejected",
        action="store_true",
        help="a 429 for tokens still uses a request, as the provider counts them",
    )
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--log-path", default=None, help="append request records as JSONL here")
    p.add_argument("--quiet", action="store_true", help="no access log line per request")
    args = p.parse_args(argv)
    config = SimConfig(
        model=args.model,
        rpm=args.rpm,
        tpm=args.tpm,
        ttft_s=args.ttft,
        per_token_s=args.per_token,
        embedding_dim=args.embedding_dim,
        error_500_rate=args.error_500_rate,
        error_503_rate=args.error_503_rate,
        timeout_rate=args.timeout_rate,
        timeout_sleep_s=args.timeout_sleep,
        insufficient_quota=args.insufficient_quota,
        charge_rejected_requests=args.charge_rejected,
        seed=args.seed,
        log_path=args.log_path,
    )
    return args, config


def main(argv: Sequence[str] | None = None) -> None:
    """Run the simulator in the foreground until interrupted."""
    args, config = parse_args(argv)
    app = create_app(config)
    handler = QuietRequestHandler if args.quiet else None
    server = make_server(args.host, args.port, app, threaded=True, request_handler=handler)
    print(f"openai-sim listening on http://{server.host}:{server.port}/v1", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        get_state(app).stopping.set()
        server.server_close()
