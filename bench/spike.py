"""Demo-day spike: a thousand readers ask at once; the API stays fast and no job is lost.

Real processes: gunicorn (bookchat's own server configuration), a Celery worker, a private
Redis, SQLite, and the OpenAI-compatible simulator answering in ~1-3 s under a rate limit.
In one run, side by side:

- **floor:** the same burst against `/healthz`, a trivial view on the same server;
- **bookchat:** 1,000 submissions from 100 concurrent clients, then every job polled to its
  end (submit latency, errors, lost jobs, time to drain, end-to-end latency, peak RSS);
- **open loop:** submits offered at fixed rates (50, 100, 200, 400 a second), p99 at each;
- **baseline:** the same burst against the original design (`bench.sync_baseline`, the model
  called inside the request, gunicorn with 32 threads).

    python -m bench.spike [--jobs 1000] [--clients 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.openai_sim import SimConfig, start_simulator
from bench.support import REPO_ROOT, BenchStack, free_port, percentile

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
                status, data = 0, {"error": type(exc).__name__}
            results.append((time.perf_counter() - started, status, data))

    async with httpx.AsyncClient(base_url=base_url, timeout=300, limits=limits) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    return results


async def open_loop(
    base_url: str, headers: dict[str, str], rate: float, seconds: float
) -> tuple[list[float], list[str]]:
    """Submits offered at a fixed rate whatever the answers' speed; latencies and job ids."""
    latencies: list[float] = []
    ids: list[str] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:

        async def one(n: int) -> None:
            started = time.perf_counter()
            body = {"message": f"What is a topic? (open loop {rate}/{n})"}
            response = await http.post("/v1/chat/jobs", json=body, headers=headers)
            latencies.append(time.perf_counter() - started)
            if response.status_code == 202:
                ids.append(response.json()["id"])

        tasks = []
        begin = time.perf_counter()
        for n in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, begin + n / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
    return latencies, ids


def summary(results: list[tuple[float, int, dict[str, Any]]], ok: int) -> dict[str, Any]:
    """p50/p99 and errors of a burst."""
    latencies = [latency for latency, _, _ in results]
    return {
        "submit_p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "submit_p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "errors": sum(1 for _, status, _ in results if status != ok),
        "error_statuses": dict(Counter(str(status) for _, status, _ in results if status != ok)),
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


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every phase in one run."""
    config = SimConfig(ttft_s=args.ttft, per_token_s=args.per_token, rpm=args.rpm, tpm=args.tpm)
    with start_simulator(config) as sim, tempfile.TemporaryDirectory() as tmp:
        env = {
            "OPENAI_API_KEY": "sk-bench",
            "OPENAI_BASE_URL": f"{sim.url}/v1",
            "LLM_RPM": str(args.rpm),
            "LLM_TPM": str(args.tpm),
            "ADMISSION_MAX_QUEUED": str(args.jobs * 10),
        }
        if args.database_url:
            env["DATABASE_URL"] = args.database_url
        # Local-mode Qdrant admits one process per folder: one worker process, many threads.
        stack = BenchStack.start(Path(tmp), env, workers=1, concurrency=args.concurrency)
        try:
            stack.ingest(REPO_ROOT / "examples" / "textbook")
            base = stack.base_url
            signup = {"email": "spike@example.com", "password": "spike-password"}
            token = httpx.post(f"{base}/v1/auth/signup", json=signup).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            floor = asyncio.run(burst(base, "/healthz", args.jobs, args.clients, {}, get=True))
            started = time.perf_counter()
            results = asyncio.run(burst(base, "/v1/chat/jobs", args.jobs, args.clients, headers))
            ids = [data["id"] for _, status, data in results if status == 202]
            outcome = drain(base, headers, ids, timeout=args.drain_timeout)
            drain_s = round(time.perf_counter() - started, 1)
            ours = {**summary(results, 202), **outcome, "drain_s": drain_s}
            # The provider starts with a minute of credit; the rest comes at the per-minute rate.
            ours["drain_floor_s"] = round(max(args.jobs - args.rpm, 0) / (args.rpm / 60), 1)
            ours["peak_rss_mb"] = {
                "web": peak_rss_mb(stack.processes[-1].pid),
                "workers": sum(peak_rss_mb(w.pid) for w in stack.workers()),
            }
            loop = {}
            for rate in args.rates:
                latencies, _ = asyncio.run(open_loop(base, headers, rate, args.loop_seconds))
                loop[str(rate)] = round(percentile(latencies, 99) * 1000, 1)
        finally:
            stack.stop()
        baseline = run_baseline(sim.url, args.jobs, args.clients)
    return {
        **ours,
        "floor": {**summary(floor, 200), "lost_jobs": 0, "drain_s": 0},
        "open_loop": loop,
        "baseline": baseline,
    }


def main() -> None:
    """Print the table and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=32, help="worker threads")
    parser.add_argument("--rpm", type=int, default=300, help="the simulated account's limit")
    parser.add_argument("--tpm", type=int, default=2_000_000, help="high enough not to bind")
    parser.add_argument("--ttft", type=float, default=1.0)
    parser.add_argument("--per-token", type=float, default=0.03)
    parser.add_argument("--rates", type=float, nargs="*", default=[50, 100, 200, 400])
    parser.add_argument("--loop-seconds", type=float, default=5.0)
    parser.add_argument("--drain-timeout", type=float, default=900)
    parser.add_argument(
        "--database-url", default="", help="e.g. PostgreSQL (an empty database); default SQLite"
    )
    result = run(parser.parse_args())
    rows = [("bookchat", result), ("floor (/healthz)", result["floor"]),
            ("baseline (model in the request)", result["baseline"])]  # fmt: skip
    print("| server | submit p50 ms | submit p99 ms | errors | lost jobs | drain s |")
    print("|---|---|---|---|---|---|")
    for name, row in rows:
        print(f"| {name} | {row['submit_p50_ms']} | {row['submit_p99_ms']} | {row['errors']} | "
              f"{row['lost_jobs']} | {row['drain_s']} |")  # fmt: skip
    print()
    print("| offered submits/s | p99 ms |")
    print("|---|---|")
    for rate, p99 in result["open_loop"].items():
        print(f"| {rate} | {p99} |")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
