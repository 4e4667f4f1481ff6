"""The OpenAI-compatible simulator in a process of its own, as the real provider would be.

A simulator served from a thread of the benchmark shares the load generator's interpreter: its
streaming threads take the GIL from the asyncio client and the client's clock then counts their
time as the server's latency.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from bench.openai_sim import SimConfig
from bench.support import REPO_ROOT, free_port


def simulator_command(config: SimConfig, port: int) -> list[str]:
    """`python -m bench.openai_sim` with the limits and latency of `config`."""
    return [sys.executable, "-m", "bench.openai_sim", "--port", str(port), "--quiet",
            "--rpm", str(config.rpm), "--tpm", str(config.tpm), "--ttft", str(config.ttft_s),
            "--per-token", str(config.per_token_s)]  # fmt: skip


@contextmanager
def simulator_process(config: SimConfig) -> Iterator[tuple[str, int]]:
    """Serve a simulator in a child process; yield its base URL and pid, stop it after."""
    port = free_port()
    process = subprocess.Popen(
        simulator_command(config, port),
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(400):
            try:
                httpx.get(f"{url}/v1/models", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        else:
            raise RuntimeError("the simulator did not start")
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
