"""An LLMClient wired to the simulator and the test Redis, with everything a test inspects."""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, cast

import openai
import redis

from bench.openai_sim import SimulatorHandle
from common.llm.circuit import CircuitBreaker
from common.llm.client import Completion, LLMClient
from common.llm.limiter import Limits, RateLimiter
from common.llm.metrics import CallStats, Counters
from common.platform.retry_policy import RetryPolicy, retry_policy
from common.platform.settings import Settings

ROOMY = Limits(rpm=6000, tpm=10**6, burst_seconds=10, headroom=1.0)
MESSAGES = [
    {"role": "system", "content": "Passages:\n[1] A node is one process in a ROS 2 graph."},
    {"role": "user", "content": "What is a node?"},
]
MAX_TOKENS = 600


def policy_with(**overrides: Any) -> RetryPolicy:
    """The default settings' retry policy with some knobs changed."""
    defaults = retry_policy(Settings(_env_file=None))  # type: ignore[call-arg]
    return replace(defaults, **overrides)


class RecordingSleep:
    """Records every requested wait and sleeps only a capped sliver of it."""

    def __init__(self, cap: float = 0.02) -> None:
        self.calls: list[float] = []
        self.cap = cap

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        time.sleep(min(seconds, self.cap))


def restart_forbidden() -> None:
    """An on_restart for calls that must never start an answer over."""
    raise AssertionError("on_restart was called though no delta had been emitted")


@dataclass
class Harness:
    client: LLMClient
    limiter: RateLimiter
    circuit: CircuitBreaker
    counters: Counters
    sleep: RecordingSleep
    model: str
    sim: SimulatorHandle
    started: float = field(default_factory=time.time)
    before: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.before = self.counters.snapshot()

    def requests(self) -> list[dict[str, Any]]:
        """Requests this test sent (earlier tests' timed-out requests may still be logged)."""
        return self.sim.log(since=self.started)

    def counted(self, name: str) -> float:
        """How much a shared counter grew during this test."""
        return self.counters.snapshot().get(name, 0.0) - self.before.get(name, 0.0)

    def chat(
        self,
        stats: CallStats,
        deltas: list[str] | None = None,
        on_restart: Callable[[], None] = restart_forbidden,
    ) -> Completion:
        """Stream a chat completion of MESSAGES."""
        sink = deltas.append if deltas is not None else lambda _: None
        return self.client.stream_chat(self.model, MESSAGES, MAX_TOKENS, sink, on_restart, stats)

    def redis_now(self) -> float:
        """The limiter's clock: Redis TIME."""
        seconds, micros = cast(tuple[int, int], self.limiter.client.time())
        return seconds + micros / 1e6


def build(
    sim: SimulatorHandle,
    redis_client: redis.Redis,
    limits: Limits = ROOMY,
    policy: RetryPolicy | None = None,
    timeout: float = 2.0,
    base_url: str | None = None,
    model_prefix: str = "gpt-4o-mini",
) -> Harness:
    """An LLMClient on a model name and a circuit no other test uses."""
    sdk = openai.OpenAI(
        base_url=base_url or f"{sim.url}/v1", api_key="sk-test", max_retries=0, timeout=timeout
    )
    limiters = functools.cache(lambda model: RateLimiter(redis_client, model, limits))
    circuit = CircuitBreaker(redis_client, f"test-{uuid.uuid4().hex[:8]}")
    sleep = RecordingSleep()
    counters = Counters(redis_client)
    client = LLMClient(sdk, limiters, circuit, counters, policy or policy_with(), sleep)
    model = f"{model_prefix}-{uuid.uuid4().hex[:6]}"
    return Harness(client, limiters(model), circuit, counters, sleep, model, sim)
