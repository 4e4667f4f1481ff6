"""Run-time state of one simulator: live config, request log, fault RNG and limiter."""

from __future__ import annotations

import dataclasses
import json
import random
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .config import SimConfig, apply_config_changes
from .limits import RateLimiter

Fault = Literal[500, 503, "timeout"]
# Bounds on the prompts kept for tests to assert on: per message, per request, and how many
# of the latest records keep theirs (a long benchmark must not hold every prompt in memory).
MAX_LOGGED_MESSAGES = 64
MAX_LOGGED_CHARS = 20_000
KEEP_MESSAGES_RECORDS = 500


@dataclass
class RequestRecord:
    """Ground truth about one request: what it asked, whether it was admitted, what it got.

    `cost_tokens` is what admission charges (prompt estimate + max_tokens); it is
    recorded for rejected requests too, but only charged when `admitted` is true.
    `messages` is the chat prompt received (bounded, see `logged_messages`). `streamed_to_end`
    turns true once a streamed answer's last chunk was sent.
    """

    t: float
    endpoint: str
    status: int = 200
    admitted: bool = False
    prompt_tokens: int = 0
    max_tokens: int = 0
    completion_tokens: int = 0
    cost_tokens: int = 0
    code: str | None = None
    request_id: str = field(default_factory=lambda: f"req_{uuid.uuid4().hex}")
    messages: list[dict[str, str]] | None = None
    streamed_to_end: bool = False


def logged_messages(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """The prompt as the log keeps it: the last messages, each cut to a bounded length."""
    return [
        {"role": m["role"], "content": m["content"][:MAX_LOGGED_CHARS]}
        for m in messages[-MAX_LOGGED_MESSAGES:]
    ]


class SimState:
    """Everything the routes share; every method is thread-safe."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.limiter = RateLimiter()
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._records: list[dict[str, Any]] = []
        self._rng = random.Random(config.seed)

    def append(self, record: RequestRecord) -> None:
        """Add a record to the log, and to the JSONL file if one is configured."""
        row = dataclasses.asdict(record)
        with self._lock:
            self._records.append(row)
            if len(self._records) > KEEP_MESSAGES_RECORDS:
                self._records[-KEEP_MESSAGES_RECORDS - 1]["messages"] = None
            if self.config.log_path:
                with open(self.config.log_path, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(row) + "\n")

    def mark_streamed(self, request_id: str) -> None:
        """Record that the streamed answer of `request_id` was sent to its end."""
        with self._lock:
            for row in reversed(self._records):
                if row["request_id"] == request_id:
                    row["streamed_to_end"] = True
                    return

    def log(self, since: float | None = None) -> list[dict[str, Any]]:
        """Return copies of the records, only those with t >= since when given."""
        with self._lock:
            return [dict(r) for r in self._records if since is None or r["t"] >= since]

    def reset(self) -> None:
        """Clear the log, refill the buckets and reseed the fault RNG."""
        with self._lock:
            self._records.clear()
            self._rng.seed(self.config.seed)
        self.limiter.reset()

    def config_dict(self) -> dict[str, Any]:
        """Return a consistent snapshot of the configuration."""
        with self._lock:
            return self.config.to_dict()

    def update_config(self, changes: Mapping[str, Any]) -> None:
        """Apply a partial config update; a new seed reseeds the fault RNG."""
        with self._lock:
            apply_config_changes(self.config, changes)
            if "seed" in changes:
                self._rng.seed(self.config.seed)

    def pop_fail_next(self) -> int | None:
        """Take the next forced status from config.fail_next, if any."""
        with self._lock:
            return self.config.fail_next.pop(0) if self.config.fail_next else None

    def draw_fault(self) -> Fault | None:
        """Draw one random fault (500, 503, timeout) from the configured rates."""
        config = self.config
        if not (config.error_500_rate or config.error_503_rate or config.timeout_rate):
            return None
        with self._lock:
            u = self._rng.random()
        if u < config.error_500_rate:
            return 500
        if u < config.error_500_rate + config.error_503_rate:
            return 503
        if u < config.error_500_rate + config.error_503_rate + config.timeout_rate:
            return "timeout"
        return None

    def sleep(self, seconds: float) -> None:
        """Sleep, waking early when the server is stopping."""
        if seconds > 0:
            self.stopping.wait(seconds)
