"""The background load of `bench.first_word`'s loaded phase: other questions at a fixed rate.

Two mixes (`--load-mix`):

- `cached` (the default): repeats of a few questions about the sample book, each answered once
  before the phase and kept by the answer cache. Every repeat goes the way of any question
  (the submit, the broker, a worker's claim, the cache lookup, its events) and is answered
  without a model call. At 50 submits a second the figure is then the queue's under load: one
  worker process on two shared cores cannot also answer 50 new questions a second (retrieval,
  the SDK's stream and the events of each take its CPU; the first run of this benchmark got 2
  of 50 first words in 30 s), and with new questions it would measure that, not the queue.
- `new`: a new question each time, each a model call (the worker's capacity, not the queue's).

The simulator has no rate limit and the worker's limiter a very high one in both: neither side
of the comparison waits for the provider.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import httpx

from bench.spike_zipf import questions

MIXES = ("cached", "new")
TERMINAL = ("completed", "incomplete", "failed", "cancelled")
SAMPLE = 200  # background jobs read back to count how many the cache answered


def finished(http: httpx.Client, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
    """The job once it has ended."""
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = http.get(f"/v1/chat/jobs/{job_id}").json()
        if job["status"] in TERMINAL or time.monotonic() > deadline:
            return job
        time.sleep(0.2)


def prime(base_url: str, token: str, count: int) -> list[str]:
    """Questions whose repeats the cache answers: each asked, answered, then asked again.

    Only those whose repeat came from the cache are kept (an answer labelled other than
    `answered` is not stored).
    """
    kept = []
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as http:
        for message in questions(count):
            for _ in range(2):
                job_id = http.post("/v1/chat/jobs", json={"message": message}).json()["id"]
                job = finished(http, job_id)
            if job.get("cached"):
                kept.append(message)
    return kept


def background_load(
    base_url: str, token: str, rate: float, mix: list[str], stop: Any, ready: Any, out: Any
) -> None:
    """In a process of its own: submit at `rate` a second until told to stop.

    `mix`: the questions to repeat, or empty for a new question each time. Puts on `out` the
    number submitted, the number refused and a sample of the accepted jobs' ids.
    """
    accepted: list[str] = []
    refused = 0

    async def offer() -> None:
        nonlocal refused
        headers = {"Authorization": f"Bearer {token}"}
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as http:

            async def one(n: int) -> None:
                nonlocal refused
                message = mix[n % len(mix)] if mix else f"What is a topic? (load {n})"
                try:
                    response = await http.post(
                        "/v1/chat/jobs", json={"message": message}, headers=headers
                    )
                except httpx.HTTPError:
                    refused += 1
                    return
                if response.status_code == 202:
                    accepted.append(response.json()["id"])
                else:
                    refused += 1

            tasks: set[asyncio.Task[None]] = set()
            begin, n = time.perf_counter(), 0
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(max(0.0, begin + n / rate - time.perf_counter()))
                task = asyncio.create_task(one(n))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                n += 1
            await asyncio.gather(*tasks)

    asyncio.run(offer())
    sample = random.Random(1).sample(accepted, min(SAMPLE, len(accepted)))
    out.put((len(accepted) + refused, refused, sample))


def load_summary(base_url: str, token: str, out: Any, seconds: float) -> dict[str, Any]:
    """What the background load was: its rate achieved, refusals, and how its jobs ended."""
    submitted, refused, sample = out.get(timeout=120)
    headers = {"Authorization": f"Bearer {token}"}
    ended: dict[str, int] = {}
    cached = 0
    deadline = time.monotonic() + 60  # jobs still queued by then count as such
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as http:
        for job_id in sample:
            job = finished(http, job_id, timeout=max(0.0, deadline - time.monotonic()))
            ended[job["status"]] = ended.get(job["status"], 0) + 1
            cached += bool(job.get("cached"))
    return {
        "submitted": submitted,
        "submits_per_s": round(submitted / seconds, 1) if seconds else 0.0,
        "refused": refused,
        "sampled": len(sample),
        "sampled_statuses": ended,
        "sampled_cached": cached,
    }
