"""A spike of repeated questions: a class asks a few questions many times (a Zipf mix).

The same real processes as `bench.spike` (gunicorn, one Celery worker, a private Redis, SQLite
or PostgreSQL, the OpenAI-compatible simulator under a rate limit), run twice in one go: with
the answer cache off (ANSWER_CACHE_ENABLED=false) and on. Each run submits `--jobs` first-turn
questions from many readers at once, drawn from `--questions` distinct questions with Zipf
weights 1/rank^s, then polls every job to its end. Reported per run: drain time, jobs answered
from the cache, model calls and tokens (the simulator's own count), and the time from submit
to completion of cached and model-answered jobs; with the cache on, then `--warm` repeats
asked one at a time after the drain (what a repeat costs once its answer is stored), `--behind`
new questions with repeats mixed in, and `--inside` new questions followed by repeats of stored
answers asked one at a time while those wait (a cached repeat inside a backlog). A backlog
repeat's time is split at the submit's answer and at the worker's claim.

    python -m bench.spike_zipf [--jobs 1000] [--questions 40] [--zipf-s 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.openai_sim import SimConfig, start_simulator
from bench.support import REPO_ROOT, BenchStack, percentile, spike_env

TERMINAL = ("completed", "incomplete", "failed", "cancelled")
# First-turn questions the sample textbook (examples/textbook) answers.
TOPICS = (
    "ROS 2 nodes", "ROS 2 topics", "publishers", "subscribers", "ROS 2 services",
    "ROS 2 actions", "launch files", "Gazebo", "digital twins", "URDF", "robot simulation",
    "sensors in Gazebo", "vision-language-action models", "VLA policies", "DDS",
    "quality of service", "the ROS 2 graph", "message types", "parameters", "physics engines",
)  # fmt: skip
FORMS = ("What are {}?", "How do {} work?")


def questions(count: int) -> list[str]:
    """`count` distinct questions about the sample book, most common first."""
    pool = [form.format(topic) for form in FORMS for topic in TOPICS]
    return pool[:count]


def zipf_mix(pool: list[str], jobs: int, s: float, seed: int = 7) -> list[str]:
    """`jobs` questions drawn from `pool` with weight 1/rank^s (a fixed seed: runs compare)."""
    weights = [1 / (rank**s) for rank in range(1, len(pool) + 1)]
    return random.Random(seed).choices(pool, weights=weights, k=jobs)


async def submit_all(
    base: str,
    tokens: list[str],
    mix: list[str],
    clients: int,
    accepted: dict[str, datetime] | None = None,
) -> list[tuple[str, str]]:
    """Submit the mix from `clients` concurrent clients, readers in turn; (job id, token).

    `accepted`, if given, receives when each submit's answer came back (this machine's clock).
    """
    submitted: list[tuple[str, str]] = []
    order = iter(enumerate(mix))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(http: httpx.AsyncClient) -> None:
        for n, message in order:
            token = tokens[n % len(tokens)]
            headers = {"Authorization": f"Bearer {token}"}
            response = await http.post("/v1/chat/jobs", json={"message": message}, headers=headers)
            if response.status_code == 202:
                submitted.append((response.json()["id"], token))
                if accepted is not None:
                    accepted[response.json()["id"]] = datetime.now(UTC)

    async with httpx.AsyncClient(base_url=base, timeout=300, limits=limits) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    return submitted


def poll(base: str, jobs: list[tuple[str, str]], timeout: float) -> list[dict[str, Any]]:
    """Every job's final body (jobs not finished by the timeout are left out)."""
    finished: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base, timeout=30) as http:
        while len(finished) < len(jobs) and time.monotonic() < deadline:
            for job_id, token in jobs:
                if job_id in finished:
                    continue
                headers = {"Authorization": f"Bearer {token}"}
                job = http.get(f"/v1/chat/jobs/{job_id}", headers=headers).json()
                if job["status"] in TERMINAL:
                    finished[job_id] = job
            time.sleep(0.5)
    return list(finished.values())


def e2e_s(job: dict[str, Any]) -> float:
    """Seconds from submit to completion."""
    done = datetime.fromisoformat(job["completed_at"])
    return (done - datetime.fromisoformat(job["created_at"])).total_seconds()


def one_run(args: argparse.Namespace, cache: bool, mix: list[str]) -> dict[str, Any]:
    """One spike with the cache on or off."""
    config = SimConfig(ttft_s=args.ttft, per_token_s=args.per_token, rpm=args.rpm, tpm=args.tpm)
    with start_simulator(config) as sim, tempfile.TemporaryDirectory() as tmp:
        env = {
            **spike_env(sim.url, args.rpm, args.tpm, args.jobs),
            "ANSWER_CACHE_ENABLED": "true" if cache else "false",
            "ANSWER_CACHE_LABELS": json.dumps(args.labels),
        }
        if args.database_url:
            env["DATABASE_URL"] = args.database_url
        stack = BenchStack.start(Path(tmp), env, workers=1, concurrency=args.concurrency)
        try:
            stack.ingest(REPO_ROOT / "examples" / "textbook")
            base = stack.base_url
            tokens = [_signup(base, n) for n in range(args.readers)]
            sim.reset()
            started = time.perf_counter()
            submitted = asyncio.run(submit_all(base, tokens, mix, args.clients))
            jobs = poll(base, submitted, args.drain_timeout)
            drain_s = time.perf_counter() - started
            calls = [r for r in sim.log() if r["endpoint"] == "/v1/chat/completions"]
            warm = _warm(base, tokens, mix, args.warm) if cache and args.warm else []
            behind = _behind(base, tokens, mix, args.behind) if cache and args.behind else []
            stored = sorted({j["message"] for j in jobs if j.get("cached")})
            inside = _inside(base, tokens, stored, args.inside) if cache and args.inside else []
        finally:
            stack.stop()
    cached = [j for j in jobs if j.get("cached")]
    fresh = [j for j in jobs if j["status"] == "completed" and not j.get("cached")]
    behind_cached = [j for j in behind if j.get("cached")]
    behind_fresh = [j for j in behind if not j.get("cached")]
    return {
        "cache": "on" if cache else "off",
        "jobs": len(mix),
        "completed": sum(1 for j in jobs if j["status"] == "completed"),
        "lost_or_failed": len(mix) - sum(1 for j in jobs if j["status"] == "completed"),
        "cached": len(cached),
        "drain_s": round(drain_s, 1),
        "model_calls": sum(1 for r in calls if r.get("admitted")),
        "model_tokens": sum(_tokens(r) for r in calls if r.get("admitted")),
        "jobs_usage_tokens": sum((j.get("usage") or {}).get("total_tokens", 0) for j in jobs),
        "cached_e2e_p50_ms": round(percentile([e2e_s(j) for j in cached], 50) * 1000, 1),
        "cached_e2e_p99_ms": round(percentile([e2e_s(j) for j in cached], 99) * 1000, 1),
        "model_e2e_p50_s": round(percentile([e2e_s(j) for j in fresh], 50), 2),
        "model_e2e_p99_s": round(percentile([e2e_s(j) for j in fresh], 99), 2),
        # Only `answered` answers are served again: the others' repeats each ask the model.
        "model_answers_by_label": dict(Counter(str(j.get("label")) for j in fresh)),
        "distinct_uncached_questions": len({j["message"] for j in fresh}),
        # Repeats asked one at a time once the spike has drained: the cache's own latency.
        "warm_repeats_cached": f"{sum(1 for j in warm if j.get('cached'))}/{len(warm)}",
        "warm_e2e_p50_ms": round(percentile([e2e_s(j) for j in warm], 50) * 1000, 1),
        "warm_e2e_p99_ms": round(percentile([e2e_s(j) for j in warm], 99) * 1000, 1),
        "warm_worker_p50_ms": round(percentile([worker_s(j) for j in warm], 50) * 1000, 1),
        # Repeats mixed into a burst of new questions that wait for the rate limiter.
        "behind_repeats_cached": f"{sum(1 for j in behind if j.get('cached'))}/{len(behind)}",
        "behind_e2e_p50_ms": round(percentile([e2e_s(j) for j in behind], 50) * 1000, 1),
        "behind_e2e_p99_ms": round(percentile([e2e_s(j) for j in behind], 99) * 1000, 1),
        # The cached ones alone, split at the claim: waiting for a thread, then the worker.
        "behind_cached_e2e_p50_ms": _p50_ms(e2e_s, behind_cached),
        "behind_cached_submit_p50_ms": _p50_ms(submit_s, behind_cached),
        "behind_cached_queue_p50_ms": _p50_ms(queue_s, behind_cached),
        "behind_cached_worker_p50_ms": _p50_ms(worker_s, behind_cached),
        "behind_uncached_labels": dict(Counter(str(j.get("label")) for j in behind_fresh)),
        # Repeats of stored answers asked one at a time while a burst of new questions waits.
        "inside_repeats_cached": f"{sum(1 for j in inside if j.get('cached'))}/{len(inside)}",
        "inside_e2e_p50_ms": _p50_ms(e2e_s, inside),
        "inside_e2e_p99_ms": round(percentile([e2e_s(j) for j in inside], 99) * 1000, 1),
        "inside_worker_p50_ms": _p50_ms(worker_s, inside),
        "inside_backlog_left": inside[-1]["backlog_left"] if inside else 0,
    }


def _p50_ms(measure: Any, jobs: list[dict[str, Any]]) -> float:
    return round(percentile([measure(j) for j in jobs], 50) * 1000, 1)


def submit_s(job: dict[str, Any]) -> float:
    """Seconds from the job's row to the submit's answer (the web's part, commit included)."""
    accepted = datetime.fromisoformat(job["accepted_at"])
    return (accepted - _aware(job["created_at"])).total_seconds()


def queue_s(job: dict[str, Any]) -> float:
    """Seconds from the submit's answer to the worker's claim (of the attempt that finished)."""
    accepted = datetime.fromisoformat(job["accepted_at"])
    return (_aware(job["started_at"]) - accepted).total_seconds()


def _aware(stamp: str) -> datetime:
    moment = datetime.fromisoformat(stamp)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def worker_s(job: dict[str, Any]) -> float:
    """Seconds from the worker's claim to completion."""
    done = datetime.fromisoformat(job["completed_at"])
    return (done - datetime.fromisoformat(job["started_at"])).total_seconds()


def _behind(base: str, tokens: list[str], mix: list[str], count: int) -> list[dict[str, Any]]:
    """A burst of `count` new questions with a cached repeat as every tenth; the repeats' ends.

    The new ones are told apart by their numbers, so none is served from the cache: they queue
    for the rate limiter, and the repeats show whether a cached answer waits behind them.
    """
    burst = [f"What is a ROS 2 node? (question {n})" for n in range(count)]
    for n in range(0, count, 10):
        burst[n] = mix[n % len(mix)]
    accepted: dict[str, datetime] = {}
    submitted = asyncio.run(submit_all(base, tokens, burst, clients=20, accepted=accepted))
    wanted = [(job_id, token) for job_id, token in submitted if _message_of(base, job_id, token)]
    jobs = poll(base, wanted, timeout=120)
    for job in jobs:
        job["accepted_at"] = accepted[job["id"]].isoformat()
    return jobs


def _inside(base: str, tokens: list[str], stored: list[str], count: int) -> list[dict[str, Any]]:
    """`count` new questions at once, then a tenth as many repeats of stored answers, each
    asked once the one before ended, while the new ones still wait for the rate limiter."""
    burst = [f"What is a ROS 2 node? (inside {n})" for n in range(count)]
    submitted = asyncio.run(submit_all(base, tokens, burst, clients=20))
    repeats = _warm(base, tokens, [stored[n % len(stored)] for n in range(count // 10)], count)
    left = sum(1 for job in _bodies(base, submitted) if job["status"] not in TERMINAL)
    for job in repeats:
        job["backlog_left"] = left
    return repeats


def _bodies(base: str, jobs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """The current body of each job."""
    with httpx.Client(base_url=base, timeout=30) as http:
        return [
            http.get(f"/v1/chat/jobs/{job_id}", headers={"Authorization": f"Bearer {token}"}).json()
            for job_id, token in jobs
        ]


def _message_of(base: str, job_id: str, token: str) -> bool:
    """Whether the job asks a question of the warm mix (not a numbered new one)."""
    headers = {"Authorization": f"Bearer {token}"}
    job = httpx.get(f"{base}/v1/chat/jobs/{job_id}", headers=headers).json()
    return "(question " not in job["message"]


def _warm(base: str, tokens: list[str], mix: list[str], count: int) -> list[dict[str, Any]]:
    """`count` repeats from the mix, each submitted once the one before has finished."""
    finished = []
    for n, message in enumerate(mix[:count]):
        headers = {"Authorization": f"Bearer {tokens[(n + 1) % len(tokens)]}"}
        job = httpx.post(f"{base}/v1/chat/jobs", json={"message": message}, headers=headers)
        job_id = job.json()["id"]
        while job.json()["status"] not in TERMINAL:
            job = httpx.get(f"{base}/v1/chat/jobs/{job_id}?wait=10", headers=headers, timeout=30)
        finished.append(job.json())
    return finished


def _tokens(record: dict[str, Any]) -> int:
    return int(record.get("prompt_tokens", 0)) + int(record.get("completion_tokens", 0))


def _signup(base: str, n: int) -> str:
    body = {"email": f"zipf-{n}@example.com", "password": "zipf-password"}
    return str(httpx.post(f"{base}/v1/auth/signup", json=body).json()["access_token"])


def main() -> None:
    """Print both runs as a table and one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--questions", type=int, default=40, help="distinct questions")
    parser.add_argument("--zipf-s", type=float, default=1.0)
    parser.add_argument("--readers", type=int, default=40, help="accounts submitting in turn")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=32, help="worker threads")
    parser.add_argument("--rpm", type=int, default=300, help="the simulated account's limit")
    parser.add_argument("--tpm", type=int, default=2_000_000)
    parser.add_argument("--ttft", type=float, default=1.0)
    parser.add_argument("--per-token", type=float, default=0.03)
    parser.add_argument("--drain-timeout", type=float, default=900)
    parser.add_argument("--warm", type=int, default=100, help="repeats after the drain (cache on)")
    parser.add_argument(
        "--behind", type=int, default=300, help="new questions with repeats mixed in (cache on)"
    )
    parser.add_argument(
        "--inside", type=int, default=0, help="new questions, then repeats asked one at a time"
    )
    parser.add_argument("--only", choices=["on", "off"], help="run one side only")
    parser.add_argument(
        "--labels", nargs="+", default=["answered"], help="ANSWER_CACHE_LABELS of the cache"
    )
    parser.add_argument("--database-url", default="", help="an empty database; default SQLite")
    args = parser.parse_args()
    mix = zipf_mix(questions(args.questions), args.jobs, args.zipf_s)
    sides = [args.only == "on"] if args.only else [False, True]
    runs = [one_run(args, cache, mix) for cache in sides]
    keys = list(runs[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for run in runs:
        print("| " + " | ".join(str(run[k]) for k in keys) + " |")
    print(json.dumps({"distinct": len(set(mix)), "runs": runs}))


if __name__ == "__main__":
    main()
