"""A demo-day burst: many readers ask at once while the model is slow.

Shows that the spike lands in the queue, not the API: submit latency stays low and every job
finishes, while answers wait their turn. Runs bookchat's real processes against the simulator.

    python -m bench.burst [--jobs 300] [--clients 32] [--ttft 0.5] [--per-token 0.01]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from bench.openai_sim import SimConfig, start_simulator
from bench.support import REPO_ROOT, BenchStack, percentile, print_metrics


def _ask(http: httpx.Client, headers: dict[str, str], n: int) -> tuple[float, int, str]:
    started = time.perf_counter()
    response = http.post(
        "/v1/chat/jobs", headers=headers, json={"message": f"What is a ROS 2 node? ({n})"}
    )
    job_id = response.json().get("id", "") if response.status_code == 202 else ""
    return time.perf_counter() - started, response.status_code, job_id


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the burst and return its measurements."""
    config = SimConfig(ttft_s=args.ttft, per_token_s=args.per_token)
    with start_simulator(config) as sim, tempfile.TemporaryDirectory() as tmp:
        stack = BenchStack.start(
            Path(tmp),
            {
                "OPENAI_API_KEY": "sk-bench",
                "OPENAI_BASE_URL": f"{sim.url}/v1",
                "TEXTBOOK_PATH": str(REPO_ROOT / "examples" / "textbook"),
            },
            concurrency=args.concurrency,
        )
        try:
            stack.ingest(REPO_ROOT / "examples" / "textbook")
            with httpx.Client(base_url=stack.base_url, timeout=60) as http:
                token = http.post(
                    "/v1/auth/signup",
                    json={"email": "bench@example.com", "password": "bench-password"},
                ).json()
                headers = {"Authorization": f"Bearer {token['access_token']}"}
                burst_started = time.perf_counter()
                with ThreadPoolExecutor(args.clients) as pool:
                    results = list(pool.map(lambda n: _ask(http, headers, n), range(args.jobs)))
                submit_seconds = time.perf_counter() - burst_started
                finished = _drain(http, headers, [job for _, _, job in results if job])
                drain_seconds = time.perf_counter() - burst_started
        finally:
            stack.stop()
    latencies = [latency for latency, _, _ in results]
    e2e = [job["e2e"] for job in finished.values()]
    statuses = [job["status"] for job in finished.values()]
    return {
        "jobs": args.jobs,
        "submit_p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "submit_p95_ms": round(percentile(latencies, 95) * 1000, 1),
        "submit_max_ms": round(max(latencies) * 1000, 1),
        "submit_errors": sum(1 for _, code, _ in results if code != 202),
        "submit_rate_per_s": round(args.jobs / submit_seconds, 1),
        "completed": statuses.count("completed"),
        "failed_jobs": len(statuses) - statuses.count("completed"),
        "answer_p50_s": round(percentile(e2e, 50), 2),
        "answer_p95_s": round(percentile(e2e, 95), 2),
        "drain_s": round(drain_seconds, 1),
    }


def _drain(http: httpx.Client, headers: dict[str, str], ids: list[str]) -> dict[str, Any]:
    finished: dict[str, Any] = {}
    deadline = time.monotonic() + 900
    while len(finished) < len(ids) and time.monotonic() < deadline:
        for job_id in ids:
            if job_id in finished:
                continue
            job = http.get(f"/v1/chat/jobs/{job_id}", headers=headers).json()
            if job["status"] in ("completed", "incomplete", "failed", "cancelled"):
                created = job["created_at"]
                done = job["completed_at"]
                job["e2e"] = _seconds_between(created, done)
                finished[job_id] = job
        time.sleep(0.5)
    return finished


def _seconds_between(start: str, end: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def main() -> None:
    """Parse flags, run, print a table and a final JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=8, help="worker threads")
    parser.add_argument("--ttft", type=float, default=0.5)
    parser.add_argument("--per-token", type=float, default=0.01)
    result = run(parser.parse_args())
    print_metrics(result)


if __name__ == "__main__":
    main()
