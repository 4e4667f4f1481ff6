"""Shared benchmark plumbing: a private bookchat (API + workers) started as real processes."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from cli.embedded_redis import ensure_embedded_redis, stop_embedded_redis
from cli.processes import BOOKCHAT, worker_args

REPO_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: Sequence[float], pct: float) -> float:
    """The pct-th percentile (nearest rank) of the values, 0 when there are none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def spike_env(sim_url: str, rpm: int, tpm: int, jobs: int) -> dict[str, str]:
    """A stack's environment for a spike: the simulator as the provider, its limits, and
    admission wide enough for the whole spike."""
    return {
        "OPENAI_API_KEY": "sk-bench",
        "OPENAI_BASE_URL": f"{sim_url}/v1",
        "LLM_RPM": str(rpm),
        "LLM_TPM": str(tpm),
        "ADMISSION_MAX_QUEUED": str(jobs * 10),
    }


def stop_processes(processes: Sequence[subprocess.Popen[bytes]], grace: float = 20) -> None:
    """Terminate the processes, killing any that outlive the grace period."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()


@dataclass
class BenchStack:
    """bookchat's web and worker processes over a private Redis and SQLite."""

    var_dir: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @classmethod
    def start(
        cls,
        var_dir: Path,
        extra_env: dict[str, str],
        workers: int = 1,
        concurrency: int = 4,
        web: bool = True,
    ) -> BenchStack:
        """Start Redis, migrate, then the API and `workers` worker processes."""
        var_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "REDIS_"))}
        env.update(
            VAR_DIR=str(var_dir),
            REDIS_URL=ensure_embedded_redis(var_dir),
            JWT_SECRET_KEY="bench-secret-" + "x" * 40,
            # /readyz?detail=true is private: the bench is one of its readers.
            METRICS_TOKEN=secrets.token_urlsafe(32),
            # A bench's load comes from a few accounts: per-user limits are not what it measures.
            RATE_LIMIT_SUBMIT="1000000/minute",
            RATE_LIMIT_SIGNUP="1000000/minute",
            RATE_LIMIT_LOGIN="1000000/minute",
            USER_DAILY_TOKENS="0",
            # Nor the service's daily model budget: thousands of submits would exhaust it (503).
            LLM_DAILY_TOKEN_BUDGET="0",
            **extra_env,
        )
        stack = cls(var_dir, env)
        try:
            stack._run(["migrate"], wait=True)
            for n in range(workers):
                stack.start_worker(f"bench{n}", concurrency)
            if web:
                stack.env["PORT"] = str(stack.port)
                stack._run(["web"])
                stack.wait_ready(need_workers=workers > 0)
        except BaseException:
            stack.stop()  # a stack that never came up leaves no process behind
            raise
        return stack

    def start_worker(self, name: str, concurrency: int = 4) -> subprocess.Popen[bytes]:
        """Start one more worker process on the chat and ingest queues."""
        self._run(worker_args(["chat", "ingest"], concurrency, f"{name}@%h", "WARNING"))
        self._workers.append(self.processes[-1])
        return self.processes[-1]

    def workers(self) -> list[subprocess.Popen[bytes]]:
        """The worker processes still running."""
        return [worker for worker in self._workers if worker.poll() is None]

    def stop_workers(self) -> None:
        """Stop every worker process (warm shutdown, then kill)."""
        stop_processes(self._workers)
        self.processes = [p for p in self.processes if p not in self._workers]
        self._workers = []

    @property
    def probe_headers(self) -> dict[str, str]:
        """The Authorization header of /metrics and /readyz?detail=true."""
        return {"Authorization": f"Bearer {self.env['METRICS_TOKEN']}"}

    @property
    def base_url(self) -> str:
        """The API's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def _run(self, args: list[str], wait: bool = False) -> None:
        log = (self.var_dir / f"{args[0]}-{len(self.processes)}.log").open("ab")
        command = [*BOOKCHAT, *args]
        if wait:
            subprocess.run(command, env=self.env, cwd=REPO_ROOT, stdout=log, stderr=log, check=True)
            return
        self.processes.append(
            subprocess.Popen(command, env=self.env, cwd=REPO_ROOT, stdout=log, stderr=log)
        )

    def ingest(self, folder: Path) -> None:
        """Ingest a textbook folder through the stack's worker (`bookchat ingest`)."""
        self._run(["ingest", str(folder), "--timeout", "600"], wait=True)

    def wait_ready(self, timeout: float = 180, need_workers: bool = True) -> None:
        """Wait until /readyz says a worker consumes the chat queue (the index may come later)."""
        needed = ("database", "redis", "workers") if need_workers else ("database", "redis")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                checks = httpx.get(
                    f"{self.base_url}/readyz?detail=true", headers=self.probe_headers, timeout=2
                ).json()["checks"]
                if all(checks[name]["ok"] for name in needed):
                    return
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"bench stack not ready; logs in {self.var_dir}")

    def stop(self) -> None:
        """Stop every process and the private Redis."""
        stop_processes(self.processes)
        stop_embedded_redis(self.var_dir)


def print_metrics(result: dict[str, Any]) -> None:
    """A two-column Markdown table of a run's figures, then the same as one JSON line."""
    width = max(len(key) for key in result)
    print("| metric".ljust(width + 2), "| value |")
    print("|", "-" * width, "| ----- |")
    for key, value in result.items():
        print(f"| {key.ljust(width)} | {value} |")
    print(json.dumps(result))
