"""The phases of `bench.spike`: bursts, an open loop, draining the queue, the synchronous baseline.

Each phase takes a base URL and headers and returns plain figures, so `bench.spike` can run it
against any stack (SQLite, PostgreSQL) and new phases (a question mix, say) slot in beside them.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.support import REPO_ROOT, free_port, percentile

TERMINAL = ("completed", "incomplete", "failed", "cancelled")


async def burst(
    base_url: str, path: str, total: int, clients: int, headers: dict[str, str], get: bool = False
) -> list[tuple[float, int, dict[str, Any]]]:
    """`total` requests from `clients` concurrent clients; (latency s, status, body) each."""
    results: list[tuple[float, int, dict[str, Any]]] = []
    counter = iter(range(total))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(http: httpx.AsyncClient) -> None:
        for n in counter:
            started = time.perf_counter()
            try:
                if get:
                    response = await http.get(path, headers=headers)
                else:
                    body = {"message": f"What is a ROS 2 node? ({n})"}
                    response = await http.post(path, json=body, headers=headers)
                status = response.status_code
                data = response.json() if response.content else {}
            except httpx.HTTPError as exc:
                status, data = 0, {"error": _described(exc)}
            results.append((time.perf_counter() - started, status, data))

    async with httpx.AsyncClient(base_url=base_url, timeout=300, limits=limits) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    return results


def _refusal(status: int, body: dict[str, Any]) -> str:
    """A refused request as its status and problem code ("503 overloaded")."""
    code = body.get("code") if isinstance(body, dict) else None
    return f"{status} {code}" if code else str(status)


def _described(exc: httpx.HTTPError) -> str:
    """A client-side failure as its type and message (which says where the connection broke)."""
    return f"{type(exc).__name__}: {exc}"[:200]


async def open_loop(
    base_url: str, headers: dict[str, str], rate: float, seconds: float
) -> tuple[list[float], list[str], Counter[str]]:
    """Submits offered at a fixed rate whatever the answers' speed; latencies, job ids, and the
    errors by status (or exception)."""
    latencies: list[float] = []
    ids: list[str] = []
    errors: Counter[str] = Counter()
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:

        async def one(n: int) -> None:
            started = time.perf_counter()
            body = {"message": f"What is a topic? (open loop {rate}/{n})"}
            try:
                response = await http.post("/v1/chat/jobs", json=body, headers=headers)
            except httpx.HTTPError as exc:
                errors[_described(exc)] += 1
                latencies.append(time.perf_counter() - started)
                return
            latencies.append(time.perf_counter() - started)
            if response.status_code == 202:
                ids.append(response.json()["id"])
            else:
                body = response.json() if "json" in response.headers.get("content-type", "") else {}
                errors[_refusal(response.status_code, body)] += 1

        tasks = []
        begin = time.perf_counter()
        for n in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, begin + n / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
    return latencies, ids, errors


def summary(results: list[tuple[float, int, dict[str, Any]]], ok: int) -> dict[str, Any]:
    """p50/p99 and errors of a burst (by status; status 0, no answer, by client exception)."""
    latencies = [latency for latency, _, _ in results]
    failed = [(status, data) for _, status, data in results if status != ok]
    return {
        "submit_p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "submit_p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "errors": len(failed),
        "error_statuses": dict(Counter(_refusal(status, data) for status, data in failed)),
        "exceptions": dict(Counter(data["error"] for status, data in failed if status == 0)),
    }


def drain(base_url: str, headers: dict[str, str], ids: list[str], timeout: float) -> dict[str, Any]:
    """Poll every job to its end; lost = never finished (or failed), end-to-end latencies."""
    finished: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base_url, timeout=30) as http:
        while len(finished) < len(ids) and time.monotonic() < deadline:
            for job_id in ids:
                if job_id not in finished:
                    job = http.get(f"/v1/chat/jobs/{job_id}", headers=headers).json()
                    if job["status"] in TERMINAL:
                        finished[job_id] = job
            time.sleep(0.5)
    e2e = [
        (
            datetime.fromisoformat(j["completed_at"]) - datetime.fromisoformat(j["created_at"])
        ).total_seconds()
        for j in finished.values()
        if j.get("completed_at")
    ]
    completed = sum(1 for j in finished.values() if j["status"] == "completed")
    failures: dict[str, int] = {}
    for job in finished.values():
        if job["status"] != "completed":
            code = (job.get("error") or {}).get("code") or job["status"]
            failures[code] = failures.get(code, 0) + 1
    return {
        "lost_jobs": len(ids) - completed,
        "not_completed_by_code": failures,
        "e2e_p50_s": round(percentile(e2e, 50), 2),
        "e2e_p95_s": round(percentile(e2e, 95), 2),
    }


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory of a process and its children (VmHWM), in MB."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    total = 0
    for each in pids:
        status = Path(f"/proc/{each}/status")
        if status.exists():
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
    return round(total / 1024, 1)


def run_baseline(sim_url: str, total: int, clients: int) -> dict[str, Any]:
    """The same burst against the original synchronous design."""
    port = free_port()
    env = {**os.environ, "OPENAI_BASE_URL": f"{sim_url}/v1", "OPENAI_API_KEY": "sk-bench"}
    command = [sys.executable, "-m", "gunicorn", "-k", "gthread", "--threads", "32",
               "--workers", "1", "--bind", f"127.0.0.1:{port}", "--timeout", "300",
               "bench.sync_baseline:create_app()"]  # fmt: skip
    server = subprocess.Popen(
        command, env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx.post(f"{url}/v1/chat", json={"message": "hi"}, timeout=30)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        started = time.perf_counter()
        results = asyncio.run(burst(url, "/v1/chat", total, clients, {}))
        return {
            **summary(results, 200),
            "drain_s": round(time.perf_counter() - started, 1),
            "lost_jobs": sum(1 for _, status, _ in results if status != 200),
        }
    finally:
        server.terminate()
        server.wait(timeout=30)
