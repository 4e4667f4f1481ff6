"""Time to the first word through the queue: `python -m bench.first_word [--questions 50]`.

Real processes: gunicorn (`bookchat web`), a Celery worker, a private Redis, SQLite, the
example textbook, and the OpenAI-compatible simulator in a process of its own. For the same
question and the same simulator settings, side by side:

- **ours:** `POST /v1/chat/jobs`, then the job's Server-Sent Events; the time from the submit
  to the first `delta` frame the client reads;
- **floor:** a streaming call with the official OpenAI SDK straight to the simulator; the time
  to the first content delta.

Both at idle (questions one after another) and while a separate process submits other
questions at `--load` a second (open loop): by default repeats that the answer cache answers
without a model call, so the loaded figure is the queue's and not the worker's capacity to
answer that many new questions (`--load-mix new` for those; see bench/first_word_load.py).
Each question is split where its time goes, from the clocks of one machine: the client's,
Redis' stream ids (the time each event was appended) and the simulator's arrival time of the
model call:

    submit -> queued event (web) -> in_progress (broker, worker, claim)
    -> model call arrives (retrieval, limiter) -> first delta appended (model, SDK, publish)
    -> first delta read by the client (stream hub, SSE)

Retrieval is real work, not queue overhead: once the worker has stopped, the same searches
are timed alone on its index (`retrieval_p50_ms`); the overhead figures still include it,
since the reader waits for it.

Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from openai import OpenAI

from bench.first_word_load import MIXES, background_load, load_summary, prime
from bench.support import REPO_ROOT, BenchStack, free_port, percentile

QUESTION = "What is a ROS 2 node?"
MAX_ERRORS = 3  # questions without a first word before a phase stops
STAGES = ("web", "claim", "before_model", "model", "to_client")


@dataclass
class FirstWord:
    """One question through the queue: seconds from the submit to each step (wall clock)."""

    tag: str
    submitted: float  # wall time the POST began
    answered: float = 0.0  # the POST's 202
    queued: float = 0.0  # the `queued` event appended (its Redis id)
    claimed: float = 0.0  # the `in_progress` event appended
    model_called: float = 0.0  # the simulator received the model call
    published: float = 0.0  # the first delta appended
    read: float = 0.0  # the client read the first delta

    @property
    def total_ms(self) -> float:
        """What the reader waits: submit to the first word on screen."""
        return (self.read - self.submitted) * 1000

    def stages_ms(self) -> dict[str, float]:
        """The wait, split at each step."""
        marks = (self.submitted, self.queued, self.claimed, self.model_called, self.published)
        ends = (*marks[1:], self.read)
        return {
            name: (end - start) * 1000 for name, start, end in zip(STAGES, marks, ends, strict=True)
        }


@dataclass
class Phase:
    """The questions of one phase, ours and the floor's."""

    ours: list[FirstWord] = field(default_factory=list)
    floor_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # questions that got no first word
    load: dict[str, Any] | None = None  # the background load, when there was one

    def summary(self) -> dict[str, Any]:
        """p50/p99 of both, of the per-question overhead, and p50 of each stage."""
        ours = [q.total_ms for q in self.ours]
        overhead = [mine - floor for mine, floor in zip(ours, self.floor_ms, strict=True)]
        stages = [q.stages_ms() for q in self.ours if q.model_called]
        return {
            "questions": len(ours),
            "errors": len(self.errors),
            "first_error": self.errors[0] if self.errors else None,
            "ours_p50_ms": _ms(percentile(ours, 50)),
            "ours_p99_ms": _ms(percentile(ours, 99)),
            "floor_p50_ms": _ms(percentile(self.floor_ms, 50)),
            "floor_p99_ms": _ms(percentile(self.floor_ms, 99)),
            "overhead_p50_ms": _ms(percentile(overhead, 50)),
            "overhead_p99_ms": _ms(percentile(overhead, 99)),
            "stages_p50_ms": {
                name: _ms(percentile([s[name] for s in stages], 50)) for name in STAGES
            },
            **({"background": self.load} if self.load is not None else {}),
        }


def _ms(value: float) -> float:
    return round(value, 1)


def _redis_time(event_id: str) -> float:
    return int(event_id.split("-", 1)[0]) / 1000


def ask(http: httpx.Client, tag: str, patience: float = 30.0) -> FirstWord:
    """Submit the question and read its event stream up to the first delta.

    A question still without one after `patience` seconds is an error (checked as frames,
    pings included, arrive).
    """
    question = FirstWord(tag, time.time())
    response = http.post("/v1/chat/jobs", json={"message": f"{QUESTION} ({tag})"})
    question.answered = time.time()
    if response.status_code != 202:
        raise RuntimeError(f"submit: {response.status_code} {response.text[:500]}")
    job_id = response.json()["id"]
    headers = {"Accept": "text/event-stream"}
    with http.stream("GET", f"/v1/chat/jobs/{job_id}/events", headers=headers) as stream:
        event_id, event, data = "", "", ""
        for line in stream.iter_lines():
            if time.time() - question.submitted > patience:
                raise RuntimeError(f"no first word within {patience:g}s")
            if line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
            elif line == "" and event:
                status = json.loads(data).get("status") if event == "status" else None
                if status == "queued":
                    question.queued = _redis_time(event_id)
                elif status == "in_progress":
                    question.claimed = _redis_time(event_id)
                elif event == "delta":
                    question.read = time.time()
                    question.published = _redis_time(event_id)
                    return question
                elif event in ("done", "error"):
                    raise RuntimeError(f"job {job_id} ended without a delta ({event})")
                event_id, event, data = "", "", ""
    raise RuntimeError(f"the stream of job {job_id} ended without a delta")


def floor(sdk: OpenAI, tag: str) -> float:
    """Milliseconds from a direct streaming call to its first content delta."""
    started = time.perf_counter()
    stream = sdk.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": f"{QUESTION} ({tag})"}],
        stream=True,
    )
    try:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                return (time.perf_counter() - started) * 1000
    finally:
        stream.close()
    raise RuntimeError("the simulator streamed no content")


def measure(
    base_url: str, sim_url: str, token: str, name: str, count: int, patience: float
) -> Phase:
    """`count` questions, each through the queue and then straight to the simulator."""
    phase = Phase()
    headers = {"Authorization": f"Bearer {token}"}
    sdk = OpenAI(base_url=f"{sim_url}/v1", api_key="sk-bench", max_retries=0)
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as http:
        for n in range(count):
            try:
                question = ask(http, f"{name} {n}", patience)
            except (RuntimeError, httpx.HTTPError) as exc:
                phase.errors.append(str(exc)[:300])
                if len(phase.errors) >= MAX_ERRORS:
                    break  # the stack cannot keep up: say so rather than wait out every question
                continue
            phase.ours.append(question)
            phase.floor_ms.append(floor(sdk, f"{name} floor {n}"))
            time.sleep(0.05)
    sdk.close()
    return phase


def model_arrivals(sim_url: str, since: float) -> dict[str, float]:
    """When the simulator received each tagged question's model call."""
    records = httpx.get(f"{sim_url}/_sim/log", params={"since": since}, timeout=30).json()
    found: dict[str, float] = {}
    for record in records:
        if record.get("endpoint") != "/v1/chat/completions":
            continue
        text = " ".join(str(m.get("content", "")) for m in record.get("messages") or [])
        start = text.find(f"{QUESTION} (")
        if start >= 0:
            tag = text[start + len(QUESTION) + 2 :].split(")", 1)[0]
            found.setdefault(tag, record["t"])
    return found


def _time_searches(env: dict[str, str], count: int) -> list[float]:
    # In a child process: the worker's settings come from its environment.
    os.environ.clear()
    os.environ.update(env)
    from common.platform.settings import Settings
    from workers.resources import WorkerResources

    res = WorkerResources(Settings())
    res.retriever.retrieve(QUESTION, k=res.settings.retrieval_k)  # models loaded, as warm
    times = []
    for n in range(count):
        started = time.perf_counter()
        res.retriever.retrieve(f"{QUESTION} (idle {n})", k=res.settings.retrieval_k)
        times.append((time.perf_counter() - started) * 1000)
    return times


def retrieval_ms(env: dict[str, str], count: int) -> tuple[float, float]:
    """p50/p99 of the worker's retrieval (query embedding, search, coverage) for the questions."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        times = pool.apply(_time_searches, (env, count))
    return _ms(percentile(times, 50)), _ms(percentile(times, 99))


def start_sim(args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], str]:
    """The simulator in a process of its own, unlimited, with the given latency."""
    port = free_port()
    command = [sys.executable, "-m", "bench.openai_sim", "--port", str(port), "--quiet",
               "--rpm", "0", "--tpm", "0", "--ttft", str(args.ttft),
               "--per-token", str(args.per_token)]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(f"{url}/v1/models", timeout=1)
            return process, url
        except httpx.HTTPError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the simulator did not start")


def run_phase(
    stack: BenchStack,
    sim_url: str,
    token: str,
    name: str,
    count: int,
    rate: float = 0.0,
    patience: float = 30.0,
    mix: list[str] | None = None,
) -> Phase:
    """One phase, under a background load of `rate` submits a second if not 0: repeats of
    `mix`, or new questions when it is empty (bench/first_word_load.py)."""
    since = time.time() - 1
    context = multiprocessing.get_context("spawn")
    stop, ready, out = context.Event(), context.Event(), context.Queue()
    loader = None
    if rate:
        args = (stack.base_url, token, rate, mix or [], stop, ready, out)
        loader = context.Process(target=background_load, args=args)
        loader.start()
        ready.wait(60)
        time.sleep(2)  # the load reaches its steady state
    began = time.monotonic()
    try:
        phase = measure(stack.base_url, sim_url, token, name, count, patience)
    finally:
        stop.set()
    if loader is not None:
        phase.load = load_summary(stack.base_url, token, out, time.monotonic() - began + 2)
        loader.join(timeout=120)
    arrivals = model_arrivals(sim_url, since)
    for question in phase.ours:
        question.model_called = arrivals.get(question.tag, 0.0)
    return phase


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Both phases on one stack."""
    sim, sim_url = start_sim(args)
    result: dict[str, Any] = {
        "ttft_s": args.ttft,
        "database": "PostgreSQL" if args.database_url else "SQLite",
    }
    try:
        with tempfile.TemporaryDirectory(prefix="bench-first-word-") as tmp:
            env = {
                "OPENAI_API_KEY": "sk-bench",
                "OPENAI_BASE_URL": f"{sim_url}/v1",
                # The provider's limits are not what this measures: neither side waits on them.
                "LLM_RPM": "1000000",
                "LLM_TPM": "1000000000",
                "ADMISSION_MAX_QUEUED": "100000",
            }
            if args.database_url:
                env["DATABASE_URL"] = args.database_url
            stack = BenchStack.start(Path(tmp), env, workers=1, concurrency=args.concurrency)
            try:
                stack.ingest(REPO_ROOT / "examples" / "textbook")
                signup = {"email": "first-word@example.com", "password": "first-word-password"}
                response = httpx.post(f"{stack.base_url}/v1/auth/signup", json=signup, timeout=30)
                token = response.json()["access_token"]
                run_phase(stack, sim_url, token, "warm-up", args.warmup, 0)
                idle = run_phase(stack, sim_url, token, "idle", args.questions, 0)
                result["idle"] = idle.summary()
                if args.load:
                    mix = (
                        prime(stack.base_url, token, args.primed)
                        if args.load_mix == "cached"
                        else []
                    )
                    result["load_mix"] = args.load_mix
                    result["load_questions"] = len(mix)
                    if args.load_mix == "cached" and not mix:
                        raise RuntimeError("no primed question was answered from the cache")
                    loaded = run_phase(
                        stack,
                        sim_url,
                        token,
                        "loaded",
                        args.questions,
                        args.load,
                        args.patience,
                        mix,
                    )
                    result[f"load_{args.load:g}_per_s"] = loaded.summary()
                # The worker holds the local index: time the same searches once it has stopped.
                stack.stop_workers()
                result["retrieval_p50_ms"], result["retrieval_p99_ms"] = retrieval_ms(
                    stack.env, args.questions
                )
            finally:
                stack.stop()
    finally:
        sim.terminate()
        sim.wait(timeout=30)
    return result


def report(result: dict[str, Any]) -> None:
    """The table of both phases, then the stages of each."""
    phases = [(name, row) for name, row in result.items() if isinstance(row, dict)]
    print("| phase | n | ours p50 ms | ours p99 ms | floor p50 ms | floor p99 ms | "
          "overhead p50 ms | overhead p99 ms |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for name, row in phases:
        print(f"| {name} | {row['questions']} | {row['ours_p50_ms']} | {row['ours_p99_ms']} | "
              f"{row['floor_p50_ms']} | {row['floor_p99_ms']} | {row['overhead_p50_ms']} | "
              f"{row['overhead_p99_ms']} |")  # fmt: skip
    print()
    print("| phase | " + " | ".join(f"{stage} p50 ms" for stage in STAGES) + " |")
    print("|---|" + "---|" * len(STAGES))
    for name, row in phases:
        stages = row["stages_p50_ms"]
        print(f"| {name} | " + " | ".join(str(stages[stage]) for stage in STAGES) + " |")
    for name, row in phases:
        if "background" in row:
            load = row["background"]
            print(f"\n{name}: background load ({result.get('load_mix')} mix, "
                  f"{result.get('load_questions')} questions repeated): {load['submitted']} "
                  f"submits, {load['submits_per_s']}/s, {load['refused']} refused; of "
                  f"{load['sampled']} sampled: {load['sampled_statuses']}, "
                  f"{load['sampled_cached']} from the cache")  # fmt: skip
    if "retrieval_p50_ms" in result:
        print()
        print(f"retrieval alone (inside before_model): p50 {result['retrieval_p50_ms']} ms, "
              f"p99 {result['retrieval_p99_ms']} ms")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    """Print the tables and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=50, help="per phase")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument(
        "--load", type=float, default=50, help="background submits a second (0: idle only)"
    )
    parser.add_argument(
        "--patience", type=float, default=30, help="seconds a question may wait for its word"
    )
    parser.add_argument(
        "--load-mix",
        choices=MIXES,
        default="cached",
        help="the load's questions: repeats the answer cache answers, or new ones (model calls)",
    )
    parser.add_argument("--primed", type=int, default=10, help="questions the cached mix repeats")
    parser.add_argument("--concurrency", type=int, default=32, help="worker threads")
    parser.add_argument("--ttft", type=float, default=0.2, help="the simulator's first token, s")
    parser.add_argument("--per-token", type=float, default=0.0)
    parser.add_argument(
        "--database-url", default="", help="e.g. PostgreSQL (an empty database); default SQLite"
    )
    result = run(parser.parse_args(argv))
    report(result)
    print(json.dumps({"first_word": result}))


if __name__ == "__main__":
    main()
