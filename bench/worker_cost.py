"""Worker CPU per offline chat job: the old configuration against the current defaults.

One run, one private stack (API, Redis, SQLite, the sample book ingested), the extractive
answerer (no OPENAI key). Each configuration gets a fresh worker process (concurrency 1);
N questions are answered one after another and the worker's CPU (utime + stime of its
process tree, from /proc) is read before and after, less its idle CPU over the same time
(heartbeats, the watchdog), measured just before.

- before: onnxruntime on 2 spinning intra-op threads, every delta sent at once (flush 0 ms)
- after:  the defaults (no spinning, deltas batched every 50 ms / 400 characters)
- after_1_thread: the defaults with EMBEDDING_THREADS=1

    python -m bench.worker_cost [--jobs 40]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench.submit_cost import cpu_seconds
from bench.support import REPO_ROOT, BenchStack

QUESTIONS = [
    "What is a ROS 2 node?",
    "How do topics work?",
    "What is a service in ROS 2?",
    "Explain quality of service settings.",
    "What is URDF used for?",
    "How do I launch several nodes?",
]
CONFIGURATIONS: dict[str, dict[str, str]] = {
    "before": {"EMBEDDING_THREADS": "2", "EMBEDDING_SPINNING": "true", "DELTA_FLUSH_MS": "0"},
    "after": {},
    "after_1_thread": {"EMBEDDING_THREADS": "1"},
}
_SETTINGS = ("EMBEDDING_THREADS", "EMBEDDING_SPINNING", "DELTA_FLUSH_MS")


def _tree(root: int) -> list[int]:
    """`root` and all its descendants."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat[1])
    found, frontier = [root], [root]
    while frontier:
        pid = frontier.pop()
        kids = [child for child, parent in parents.items() if parent == pid]
        found += kids
        frontier += kids
    return found


def _ask(http: httpx.Client, headers: dict[str, str], question: str) -> dict[str, Any]:
    job = http.post("/v1/chat/jobs", json={"message": question}, headers=headers).json()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = http.get(f"/v1/chat/jobs/{job['id']}?wait=10", headers=headers).json()
        if job["status"] in ("completed", "incomplete", "failed", "cancelled"):
            return dict(job)
    raise RuntimeError(f"job {job['id']} did not finish")


def _measure(
    stack: BenchStack, http: httpx.Client, headers: dict[str, str], jobs: int, idle_s: float
) -> dict[str, float]:
    worker = stack.workers()[0]
    _ask(http, headers, "What is a ROS 2 node?")  # load the model, warm the pools
    pids = _tree(worker.pid)
    idle_start = cpu_seconds(pids)
    time.sleep(idle_s)
    idle_rate = (cpu_seconds(pids) - idle_start) / idle_s
    started_cpu, started = cpu_seconds(pids), time.monotonic()
    answers = [_ask(http, headers, QUESTIONS[n % len(QUESTIONS)]) for n in range(jobs)]
    wall = time.monotonic() - started
    cpu = cpu_seconds(pids) - started_cpu - idle_rate * wall
    completed = sum(1 for answer in answers if answer["status"] == "completed")
    return {
        "cpu_ms_per_job": round(cpu / jobs * 1000, 1),
        "wall_ms_per_job": round(wall / jobs * 1000, 1),
        "idle_cpu_ms_per_s": round(idle_rate * 1000, 2),
        "completed": completed,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Ingest once, then measure each configuration on a fresh worker."""
    results: dict[str, Any] = {"jobs": args.jobs}
    with tempfile.TemporaryDirectory() as tmp:
        textbook = str(REPO_ROOT / "examples" / "textbook")
        stack = BenchStack.start(Path(tmp), {"TEXTBOOK_PATH": textbook}, concurrency=1)
        try:
            stack.ingest(REPO_ROOT / "examples" / "textbook")
            with httpx.Client(base_url=stack.base_url, timeout=60) as http:
                signup = {"email": f"w-{uuid.uuid4().hex[:8]}@example.com", "password": "x" * 12}
                token = http.post("/v1/auth/signup", json=signup).json()["access_token"]
                headers = {"Authorization": f"Bearer {token}"}
                for name, overrides in CONFIGURATIONS.items():
                    stack.stop_workers()
                    for setting in _SETTINGS:
                        stack.env.pop(setting, None)
                    stack.env.update(overrides)
                    stack.start_worker(f"cost-{name}", concurrency=1)
                    stack.wait_ready()
                    results[name] = _measure(stack, http, headers, args.jobs, args.idle)
        finally:
            stack.stop()
    before, after = results["before"]["cpu_ms_per_job"], results["after"]["cpu_ms_per_job"]
    results["after_over_before"] = round(after / before, 3) if before else None
    return results


def main() -> None:
    """Parse flags, run, print a table and a final JSON line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--idle", type=float, default=3.0, help="seconds of idle measurement")
    result = run(parser.parse_args())
    print("| configuration | CPU ms/job | wall ms/job | idle CPU ms/s | completed |")
    print("| --- | --- | --- | --- | --- |")
    for name in CONFIGURATIONS:
        row = result[name]
        print(
            f"| {name} | {row['cpu_ms_per_job']} | {row['wall_ms_per_job']} | "
            f"{row['idle_cpu_ms_per_s']} | {row['completed']}/{result['jobs']} |"
        )
    print(f"after/before CPU: {result['after_over_before']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
