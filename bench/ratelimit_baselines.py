"""What users write without a shared limiter, for the rate-limit benchmark to compare against.

- `tenacity`: the SDK with retries off, wrapped in tenacity's exponential backoff with jitter
  (the cookbook's advice), giving up after 6 attempts.
- `sdk`: the official SDK's default retries (2, exponential, honouring Retry-After).
- `celery-rate-limit`: the `sdk` answerer plus Celery's task `rate_limit` set to the account's
  limit on every worker (which Celery enforces per worker, not globally).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, cast

import openai
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from common.llm.base import Answer, AnswerRequest, DeltaSink
from common.llm.errors import LLMError, classify
from common.llm.metrics import CallStats
from common.llm.prompts import build_messages

_RETRYABLE = (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError)
_sleeps = threading.local()


class SleepRecordingOpenAI(openai.OpenAI):
    """The official client, noting how long its built-in retries sleep (for the benchmark)."""

    def _calculate_retry_timeout(self, *args: Any, **kwargs: Any) -> float:
        timeout = super()._calculate_retry_timeout(*args, **kwargs)
        _sleeps.total = getattr(_sleeps, "total", 0.0) + timeout
        return timeout


def _stream(
    sdk: openai.OpenAI,
    model: str,
    max_tokens: int,
    request: AnswerRequest,
    on_delta: DeltaSink,
    stats: CallStats,
) -> Answer:
    stats.llm_calls += 1
    stream = sdk.chat.completions.create(
        model=model,
        messages=cast(Any, build_messages(request)),
        max_tokens=max_tokens,
        stream=True,
        stream_options={"include_usage": True},
    )
    parts: list[str] = []
    usage: dict[str, Any] | None = None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage.model_dump(
                include={"prompt_tokens", "completion_tokens", "total_tokens"}
            )
        for choice in chunk.choices:
            if choice.delta.content:
                parts.append(choice.delta.content)
                on_delta(choice.delta.content)
    return Answer("".join(parts), model, usage)


def _give_up(exc: openai.OpenAIError) -> LLMError:
    """A baseline has no re-queueing: whatever its retries did not fix fails the job."""
    error = classify(exc)
    return LLMError(error.code, error.message, retryable=False)


class SDKRetriesAnswerer:
    """Baseline (b): rely on the SDK's own retries."""

    def __init__(self, sdk: SleepRecordingOpenAI, model: str, max_tokens: int) -> None:
        self.sdk, self.model, self.max_tokens = sdk, model, max_tokens

    def generate(
        self,
        request: AnswerRequest,
        on_delta: DeltaSink,
        stats: CallStats,
        on_restart: Callable[[], None] = lambda: None,
    ) -> Answer:
        """One call; the SDK retries inside it."""
        _sleeps.total = 0.0
        try:
            return _stream(self.sdk, self.model, self.max_tokens, request, on_delta, stats)
        except openai.OpenAIError as exc:
            raise _give_up(exc) from exc
        finally:
            stats.backoff_sleep_s += _sleeps.total


class TenacityAnswerer:
    """Baseline (a): exponential backoff with jitter around each call, nothing shared."""

    def __init__(self, sdk: openai.OpenAI, model: str, max_tokens: int) -> None:
        self.sdk, self.model, self.max_tokens = sdk, model, max_tokens

    def generate(
        self,
        request: AnswerRequest,
        on_delta: DeltaSink,
        stats: CallStats,
        on_restart: Callable[[], None] = lambda: None,
    ) -> Answer:
        """Retry rate limits and server errors up to 6 attempts, sleeping in the worker."""

        def sleep(seconds: float) -> None:
            stats.backoff_sleep_s += seconds
            time.sleep(seconds)

        retrying = Retrying(
            wait=wait_random_exponential(multiplier=1, max=60),
            stop=stop_after_attempt(6),
            retry=retry_if_exception_type(_RETRYABLE),
            sleep=sleep,
            reraise=True,
        )
        try:
            return retrying(
                _stream, self.sdk, self.model, self.max_tokens, request, on_delta, stats
            )
        except openai.OpenAIError as exc:
            raise _give_up(exc) from exc
