"""How long a worker's death costs its jobs, with the default leases and watchdog.

Runs bookchat's real processes (gunicorn API, Celery workers, a private Redis, SQLite) against
the simulator as a slow model. Each round submits jobs to one worker, waits until every answer
is streaming, then breaks the worker and starts a replacement at once:

- `no fault`: the same jobs left alone (the floor: plain answer time, measured in the same run);
- `kill -9`: the worker dies mid-answer; the watchdog takes the jobs back when their leases
  expire (`JOB_LEASE_SECONDS`, default 15) and the replacement answers them again;
- `SIGTERM`: a warm shutdown hands the jobs back at once.

Reported per scenario: seconds from the fault to the last job completed (from submit, for the
floor), the worker's exit time, and attempts per job. The target is completion within 60 s of
a `kill -9`.

    python -m bench.recovery [--rounds 2] [--jobs 4]
"""

from __future__ import annotations

import argparse
import json
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.openai_sim import SimConfig, start_simulator
from bench.support import BenchStack, percentile

SELECTION = (
    "A ROS 2 node is a single process that performs computation. Nodes exchange messages over "
    "topics, offer services and actions, and are composed into larger systems."
)
SCENARIOS = ("no fault", "kill -9", "SIGTERM")
TARGET_S = 60.0


def _submit(http: httpx.Client, headers: dict[str, str], jobs: int) -> list[str]:
    ids = []
    for n in range(jobs):
        body = {"message": f"What is a node? ({n})", "selected_text": SELECTION}
        response = http.post("/v1/chat/jobs", headers=headers, json=body)
        response.raise_for_status()
        ids.append(response.json()["id"])
    return ids


def _statuses(http: httpx.Client, headers: dict[str, str], ids: list[str]) -> list[dict[str, Any]]:
    return [http.get(f"/v1/chat/jobs/{job_id}", headers=headers).json() for job_id in ids]


def _wait(http: httpx.Client, headers: dict[str, str], ids: list[str], done: set[str]) -> list:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        jobs = _statuses(http, headers, ids)
        if all(job["status"] in done for job in jobs):
            return jobs
        time.sleep(0.1)
    raise RuntimeError(f"jobs did not reach {done}: {jobs}")


def run_round(
    stack: BenchStack, http: httpx.Client, headers: dict[str, str], scenario: str, n: int, jobs: int
) -> dict[str, Any]:
    """One round of one scenario: break (or not) the worker running the jobs, then recover."""
    assert not stack.workers(), "a round starts with no worker, so one worker takes every job"
    worker = stack.start_worker(f"round{n}", concurrency=jobs)
    submitted = time.monotonic()
    ids = _submit(http, headers, jobs)
    _wait(http, headers, ids, {"in_progress"})
    time.sleep(1.0)  # every answer is streaming now
    exit_s = 0.0
    fault_at = submitted
    if scenario != "no fault":
        fault_at = time.monotonic()
        worker.send_signal(signal.SIGKILL if scenario == "kill -9" else signal.SIGTERM)
        worker.wait(timeout=60)
        exit_s = time.monotonic() - fault_at
        stack.start_worker(f"replacement{n}", concurrency=jobs)
    finished = _wait(http, headers, ids, {"completed", "incomplete", "failed", "cancelled"})
    recovered_s = time.monotonic() - fault_at
    stack.stop_workers()
    return {
        "seconds": recovered_s,
        "exit_s": exit_s,
        "attempts": [job["attempts"] for job in finished],
        "completed": sum(job["status"] == "completed" for job in finished),
        "jobs": len(finished),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run every scenario `rounds` times against one deployment."""
    config = SimConfig(ttft_s=0.05, per_token_s=args.per_token)
    results: dict[str, list[dict[str, Any]]] = {scenario: [] for scenario in SCENARIOS}
    with start_simulator(config) as sim, tempfile.TemporaryDirectory() as tmp:
        env = {"OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": f"{sim.url}/v1"}
        stack = BenchStack.start(Path(tmp), env, workers=1, concurrency=1)
        stack.stop_workers()  # each round starts its own
        try:
            with httpx.Client(base_url=stack.base_url, timeout=60) as http:
                signup = {"email": "bench@example.com", "password": "bench-password"}
                token = http.post("/v1/auth/signup", json=signup).json()["access_token"]
                headers = {"Authorization": f"Bearer {token}"}
                for n in range(args.rounds):
                    for scenario in SCENARIOS:
                        outcome = run_round(stack, http, headers, scenario, n, args.jobs)
                        results[scenario].append(outcome)
                        print(f"round {n + 1} {scenario}: {outcome}", flush=True)
        finally:
            stack.stop()
    return _summary(results)


def _summary(results: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    floor = percentile([r["seconds"] for r in results["no fault"]], 50) or 1.0
    rows = {}
    for scenario, rounds in results.items():
        seconds = [r["seconds"] for r in rounds]
        rows[scenario] = {
            "p50_s": round(percentile(seconds, 50), 2),
            "max_s": round(max(seconds), 2),
            "ratio_to_no_fault": round(percentile(seconds, 50) / floor, 2),
            "worker_exit_s": round(max(r["exit_s"] for r in rounds), 2),
            "attempts": sorted({a for r in rounds for a in r["attempts"]}),
            "completed": f"{sum(r['completed'] for r in rounds)}/{sum(r['jobs'] for r in rounds)}",
        }
    kill = rows["kill -9"]
    return {"scenarios": rows, "kill9_target_s": TARGET_S, "kill9_met": kill["max_s"] <= TARGET_S}


def main() -> None:
    """Print the table and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--per-token", type=float, default=0.2, help="simulated seconds a token")
    summary = run(parser.parse_args())
    print()
    print("| scenario | seconds to all completed p50 / max | x no fault | worker exit s |"
          " attempts | completed |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for scenario, row in summary["scenarios"].items():
        print(
            f"| {scenario} | {row['p50_s']} / {row['max_s']} | {row['ratio_to_no_fault']} | "
            f"{row['worker_exit_s']} | {row['attempts']} | {row['completed']} |"
        )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
