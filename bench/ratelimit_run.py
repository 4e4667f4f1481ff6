"""One strategy's run in the rate-limit benchmark: its simulator, workers, load and results."""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy import select

from bench.openai_sim import estimate_tokens
from bench.support import REPO_ROOT, free_port, percentile, stop_processes
from cli.processes import BOOKCHAT
from common.accounts.users import create_user
from common.book.retrieval.passages import Passage
from common.jobs.chat_jobs import queue_chat_job
from common.jobs.events import JobEvents
from common.jobs.queue import make_celery
from common.jobs.schemas import ChatJobCreate
from common.llm.base import AnswerRequest
from common.llm.prompts import build_messages
from common.platform.db import make_engine, make_session_factory, session_scope
from common.platform.models import ChatJob
from common.platform.redis_client import make_redis
from common.platform.settings import Settings

_PASSAGE_SENTENCE = (
    "A humanoid robot balances by keeping its centre of mass above the support polygon formed "
    "by its feet, adjusting ankle and hip torques many times a second. "
)


def passage_text(chars: int) -> str:
    """A selection of about `chars` characters for every job's prompt."""
    return (_PASSAGE_SENTENCE * (chars // len(_PASSAGE_SENTENCE) + 1))[:chars]


class StrategyRun:
    """A strategy's private simulator, Redis database, SQLite file and worker processes."""

    def __init__(self, name: str, var_dir: Path, redis_url: str, args: argparse.Namespace) -> None:
        self.name, self.var_dir, self.args = name, var_dir, args
        self.sim_port = free_port()
        self.sim_url = f"http://127.0.0.1:{self.sim_port}"
        self.settings = Settings(
            _env_file=None,
            environment="test",
            var_dir=var_dir,
            redis_url=redis_url,  # type: ignore[call-arg]
            database_url=f"sqlite:///{var_dir / 'bookchat.db'}",
            openai_api_key=SecretStr("sk-bench"),
            openai_base_url=f"{self.sim_url}/v1",
            llm_rpm=args.rpm,
            llm_tpm=args.tpm,
            chat_max_tokens=args.max_tokens,
            llm_max_job_wait_seconds=3600,
            jwt_secret_key=SecretStr("bench-" + "x" * 40),
        )
        self.selection = passage_text(args.prompt_chars)
        self.processes: list[subprocess.Popen[bytes]] = []
        self.load_started = self.load_ended = self.finished = 0.0
        self.submitted = 0

    @property
    def cost_per_call(self) -> int:
        """Tokens the provider charges one call at admission (prompt estimate + max_tokens)."""
        request = AnswerRequest(
            "What keeps it upright? (0000)",
            [Passage("selection", "Selected text", "Selected text", "", self.selection, 1.0)],
            from_selection=True,
        )
        prompt = sum(estimate_tokens(m["content"]) for m in build_messages(request))
        return prompt + self.args.max_tokens

    @property
    def binding_per_minute(self) -> float:
        """Calls per minute the binding limit allows."""
        return min(self.args.rpm, self.args.tpm / self.cost_per_call)

    @property
    def offered_per_minute(self) -> float:
        """Jobs submitted per minute."""
        return self.binding_per_minute * self.args.load_factor

    def binding_description(self) -> str:
        """Which limit binds, for the log."""
        by_tokens = self.args.tpm / self.cost_per_call
        which = "TPM" if by_tokens < self.args.rpm else "RPM"
        return f"{which} ({self.binding_per_minute:.0f} calls/min at {self.cost_per_call} tokens)"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "REDIS_"))}
        for name in (
            "var_dir",
            "redis_url",
            "database_url",
            "openai_base_url",
            "llm_rpm",
            "llm_tpm",
            "llm_headroom",
            "llm_burst_seconds",
            "llm_credit_window_seconds",
            "chat_max_tokens",
            "llm_max_job_wait_seconds",
            "environment",
        ):
            env[name.upper()] = str(getattr(self.settings, name))
        env["OPENAI_API_KEY"] = env["JWT_SECRET_KEY"] = "bench-" + "x" * 40
        return env

    def _spawn(self, command: list[str], log_name: str) -> None:
        log = (self.var_dir / log_name).open("ab")
        self.processes.append(
            subprocess.Popen(
                command, env=self._env(), cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        )

    def start(self) -> None:
        """Simulator, migrations and worker processes."""
        self.var_dir.mkdir(parents=True)
        a = self.args
        self._spawn(
            [
                sys.executable,
                "-m",
                "bench.openai_sim",
                "--port",
                str(self.sim_port),
                "--rpm",
                str(a.rpm),
                "--tpm",
                str(a.tpm),
                "--ttft",
                str(a.ttft),
                "--per-token",
                str(a.per_token),
                "--quiet",
                *(["--charge-rejected"] if a.charge_rejected else []),
            ],
            "sim.log",
        )
        subprocess.run(
            [*BOOKCHAT, "migrate"],
            env=self._env(),
            cwd=REPO_ROOT,
            check=True,
            capture_output=True,
        )
        per_worker = f"{math.floor(self.binding_per_minute)}/m"
        for n in range(a.workers):
            self._spawn(
                [
                    sys.executable,
                    "-m",
                    "bench.ratelimit_worker",
                    "--strategy",
                    self.name,
                    "--concurrency",
                    str(a.concurrency),
                    "--hostname",
                    f"{self.name}{n}@%h",
                    "--rate-limit",
                    per_worker,
                ],
                f"worker{n}.log",
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.sim_url}/v1/models", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        time.sleep(3)  # let the workers connect before the clock starts

    def drive(self) -> None:
        """Offer the load at a steady rate, then wait for the backlog to drain (capped)."""
        sessions = make_session_factory(make_engine(self.settings))
        celery = make_celery(self.settings)
        events = JobEvents(make_redis(self.settings))
        with session_scope(sessions) as session:
            user_id = create_user(session, f"{self.name}@bench.local", "bench-password", None).id
        interval = 60.0 / self.offered_per_minute
        self.load_started = time.time()
        end = self.load_started + self.args.minutes * 60
        next_at = self.load_started
        while next_at < end:
            time.sleep(max(0.0, next_at - time.time()))
            with session_scope(sessions) as session:
                queue_chat_job(
                    session,
                    celery,
                    events,
                    user_id,
                    ChatJobCreate(
                        message=f"What keeps it upright? ({self.submitted:04d})",
                        selected_text=self.selection,
                    ),
                )
            self.submitted += 1
            next_at += interval
        self.load_ended = time.time()
        drain_end = self.load_ended + self.args.drain_minutes * 60
        while time.time() < drain_end and self._unfinished(sessions) > 0:
            time.sleep(1)
        self.finished = time.time()

    def _unfinished(self, sessions: Any) -> int:
        with session_scope(sessions) as session:
            statuses = session.scalars(select(ChatJob.status)).all()
        return sum(1 for s in statuses if s in ("queued", "in_progress"))

    def jobs(self) -> list[ChatJob]:
        """Every job row."""
        sessions = make_session_factory(make_engine(self.settings))
        with session_scope(sessions) as session:
            return list(session.scalars(select(ChatJob)).all())

    def simulator_log(self) -> list[dict[str, Any]]:
        """The simulator's record of every request."""
        return list(httpx.get(f"{self.sim_url}/_sim/log", timeout=30).json())

    def stop(self) -> None:
        """Stop workers and the simulator."""
        stop_processes(self.processes)


def summarize(run: StrategyRun) -> dict[str, Any]:
    """The strategy's figures, from the simulator's log and the job rows."""
    log = sorted(
        (r for r in run.simulator_log() if r["endpoint"] == "/v1/chat/completions"),
        key=lambda r: r["t"],
    )
    window_start, window_end = run.load_started + 60, run.load_ended
    in_window = [r for r in log if r["admitted"] and window_start <= r["t"] < window_end]
    minutes = max(1e-9, (window_end - window_start) / 60)
    token_share = sum(r["cost_tokens"] for r in in_window) / (run.args.tpm * minutes)
    request_share = len(in_window) / (run.args.rpm * minutes)
    rate_limited = sum(1 for r in log if r["status"] == 429)
    jobs = run.jobs()
    completed = [j for j in jobs if j.status == "completed"]
    # Jobs still waiting at the end count with their age then: a lower bound, not a skip.
    latencies = [
        (j.completed_at.timestamp() if j.completed_at else run.finished) - j.created_at.timestamp()
        for j in jobs
        if j.status != "failed"
    ]
    slots = run.args.workers * run.args.concurrency * max(1.0, run.finished - run.load_started)
    sleeping = sum(
        (j.metrics or {}).get("limiter_wait_s", 0) + (j.metrics or {}).get("backoff_sleep_s", 0)
        for j in jobs
    )
    return {
        "goodput_pct": round(100 * max(token_share, request_share), 1),
        "rate_429_pct": round(100 * rate_limited / max(1, len(log)), 2),
        "failed_jobs": sum(1 for j in jobs if j.status == "failed"),
        "unfinished_jobs": sum(1 for j in jobs if j.status in ("queued", "in_progress")),
        "completed_jobs": len(completed),
        "p50_latency_s": round(percentile(latencies, 50), 1),
        "p95_latency_s": round(percentile(latencies, 95), 1),
        "sleeping_slot_pct": round(100 * sleeping / slots, 1),
        "attempts": len(log),
        "submitted": run.submitted,
    }
