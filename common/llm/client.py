"""The one way bookchat calls a model: rate-limited, retried and circuit-protected.

The SDK's own retries are off; this layer owns them. Before each call the shared limiter
reserves requests and tokens; a short wait is slept, a long one becomes `RetryLater`: the
attempt ends, its worker slot is freed, and the job waits in the database until it is due again.
Retryable failures are retried with jittered backoff (tenacity); never-retryable ones raise
`LLMError` at once.
The knobs are in `common.platform.retry_policy.RetryPolicy`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import openai
import redis
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from common.book.token_estimates import admission_tokens
from common.llm.base import DeltaSink
from common.llm.circuit import CircuitBreaker, CircuitOpen
from common.llm.errors import LLMError, RetryLater, classify
from common.llm.limiter import Mark, RateLimiter, RequestTooLarge
from common.llm.metrics import CallStats, Counters, estimate_cost_usd
from common.llm.provider_headers import rate_limit_state
from common.platform.retry_policy import RetryPolicy

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None = None  # "stop", or "length" / "content_filter" when cut short


def estimate_prompt_tokens(messages: Sequence[dict[str, str]]) -> int:
    """Prompt tokens of chat messages, with a small per-message overhead."""
    return sum(admission_tokens(m.get("content", "")) + 4 for m in messages) + 3


class LLMClient:
    """Chat completions (streamed or not) and embeddings through the shared limits."""

    def __init__(
        self,
        sdk: openai.OpenAI,
        limiters: Callable[[str], RateLimiter],
        circuit: CircuitBreaker,
        counters: Counters,
        policy: RetryPolicy,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.sdk = sdk
        self.limiters = limiters
        self.circuit = circuit
        self.counters = counters
        self.policy = policy
        self.sleep = sleep

    def stream_chat(
        self,
        model: str,
        messages: list[dict[str, str]],
        max_tokens: int,
        on_delta: DeltaSink,
        on_restart: Callable[[], None],
        stats: CallStats,
        temperature: float = 0.2,
        ticket: str | None = None,
    ) -> Completion:
        """Stream a chat completion, passing each text delta on; restarts call `on_restart`.

        `ticket` names the caller (a job) so a long wait books its slot across re-queues.
        """
        estimate = estimate_prompt_tokens(messages)
        emitted = False

        def call() -> tuple[Completion, dict[str, str]]:
            nonlocal emitted
            if emitted:
                on_restart()
                emitted = False
            raw = self.sdk.chat.completions.with_raw_response.create(
                model=model,
                messages=cast(Any, messages),
                max_tokens=max_tokens,
                temperature=temperature,
                stream=True,
                stream_options={"include_usage": True},
            )
            parts: list[str] = []
            usage = None
            served_by, finish = model, None
            for chunk in raw.parse():
                served_by = chunk.model or served_by
                usage = chunk.usage or usage
                for choice in chunk.choices:
                    finish = choice.finish_reason or finish
                    if choice.delta.content:
                        parts.append(choice.delta.content)
                        emitted = True
                        on_delta(choice.delta.content)
            prompt = usage.prompt_tokens if usage else estimate
            completion = usage.completion_tokens if usage else admission_tokens("".join(parts))
            text = "".join(parts)
            return Completion(text, served_by, prompt, completion, finish), dict(raw.headers)

        result = self._run(model, estimate, max_tokens, call, stats, ticket)
        self._account(stats, model, result.prompt_tokens, result.completion_tokens)
        return result

    def embed(self, model: str, texts: Sequence[str], stats: CallStats) -> list[list[float]]:
        """Embeddings of the texts, in order."""
        estimate = sum(admission_tokens(text) for text in texts)

        def call() -> tuple[tuple[list[list[float]], int], dict[str, str]]:
            raw = self.sdk.embeddings.with_raw_response.create(
                model=model, input=list(texts), encoding_format="float"
            )
            response = raw.parse()
            vectors = [item.embedding for item in sorted(response.data, key=lambda d: d.index)]
            return (vectors, response.usage.prompt_tokens), dict(raw.headers)

        vectors, prompt_tokens = self._run(model, estimate, 0, call, stats, None)
        self._account(stats, model, prompt_tokens, 0)
        return vectors

    def _account(self, stats: CallStats, model: str, prompt: int, completion: int) -> None:
        stats.prompt_tokens += prompt
        stats.completion_tokens += completion
        stats.cost_usd += estimate_cost_usd(model, prompt, completion) or 0.0
        self.counters.add_tokens(prompt, completion)

    def _run(
        self,
        model: str,
        prompt_estimate: int,
        max_tokens: int,
        call: Callable[[], tuple[T, dict[str, str]]],
        stats: CallStats,
        ticket: str | None,
    ) -> T:
        limiter = self.limiters(model)
        cost = prompt_estimate + max_tokens

        def attempt() -> T:
            try:
                mark = self._admit(limiter, cost, stats, ticket)
                self.counters.add("requests")
            except redis.RedisError as exc:
                # No shared limits to check against: wait rather than risk a 429 storm.
                raise RetryLater(self.policy.requeue_delay_s, "the rate limiter is away") from exc
            stats.llm_calls += 1
            started = time.monotonic()
            try:
                value, headers = call()
            except openai.OpenAIError as exc:
                raise self._failed(limiter, classify(exc), stats) from exc
            try:
                age = time.monotonic() - started
                synced = limiter.observe(rate_limit_state(headers), age=age, mark=mark)
                self.circuit.record_success()
                actual_prompt = getattr(value, "prompt_tokens", None)
                # The provider's own reading already counts what it charged this call.
                if isinstance(actual_prompt, int) and not synced:
                    limiter.reconcile(cost, actual_prompt + max_tokens)
            except redis.RedisError:
                log.warning("could not record a model call's usage in the shared limiter")
            return value

        retrying = Retrying(
            stop=stop_after_attempt(self.policy.max_attempts),
            retry=retry_if_exception(lambda e: isinstance(e, LLMError) and e.retryable),
            wait=self._backoff,
            sleep=lambda s: self._slept(s, stats),
            reraise=True,
            before_sleep=lambda _state: self._count_retry(stats),
        )
        try:
            return retrying(attempt)
        except CircuitOpen as exc:
            reason = "the language model is failing; circuit open"
            raise RetryLater(exc.retry_in, reason, True, exc.probed_at) from exc
        except LLMError as exc:
            if not exc.retryable:
                raise
            delay = max(exc.retry_after or 0.0, self.policy.requeue_delay_s)
            raise RetryLater(delay, exc.message) from exc

    def _admit(
        self, limiter: RateLimiter, cost: int, stats: CallStats, ticket: str | None
    ) -> Mark | None:
        self.circuit.before_call()
        try:
            reservation = limiter.reserve(cost, self.policy.max_wait_in_process_s, ticket)
        except RequestTooLarge as exc:
            raise LLMError("request_too_large", str(exc), retryable=False) from exc
        if not reservation.granted:
            self.counters.add("requeues_for_limit")
            raise RetryLater(reservation.delay, "waiting for rate-limit capacity")
        if reservation.delay > 0:
            self.counters.add("limiter_waits")
            self.counters.add("limiter_wait_seconds", reservation.delay)
            stats.limiter_wait_s += reservation.delay
            self.sleep(reservation.delay)
        return reservation.mark

    def _failed(self, limiter: RateLimiter, error: LLMError, stats: CallStats) -> LLMError:
        if error.code == "rate_limited":
            stats.rate_limited += 1
        try:
            self.counters.add(f"errors_{error.code}")
            if error.code == "rate_limited":
                limiter.pause(error.retry_after if error.retry_after is not None else 1.0)
            elif error.retryable and self.circuit.record_failure():
                self.counters.add("circuit_opened")
        except redis.RedisError:
            log.warning("could not share a provider failure with other workers")
        return error

    def _backoff(self, retry_state: Any) -> float:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(error, LLMError) and error.code == "rate_limited":
            return 0.0  # the shared pause, via the limiter's reservation, does the waiting
        expo = wait_random_exponential(multiplier=0.5, max=self.policy.backoff_max_s)
        return float(expo(retry_state))

    def _slept(self, seconds: float, stats: CallStats) -> None:
        stats.backoff_sleep_s += seconds
        self.sleep(seconds)

    def _count_retry(self, stats: CallStats) -> None:
        stats.retries += 1
        self.counters.add("retries")
