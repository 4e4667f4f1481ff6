"""Provider errors sorted into what to retry, what to wait out, and what to report at once."""

from __future__ import annotations

import openai

from common.llm.provider_headers import retry_after_seconds


class LLMError(Exception):
    """A provider failure with a code the user sees; `retryable` says whether to try again."""

    def __init__(
        self, code: str, message: str, *, retryable: bool, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after


class RetryLater(Exception):
    """The call cannot run soon: give the worker slot back and try again after `delay` seconds."""

    def __init__(
        self,
        delay: float,
        reason: str,
        circuit_open: bool = False,
        probed_at: float | None = None,
    ) -> None:
        super().__init__(f"retry in {delay:.1f}s: {reason}")
        self.delay = delay
        self.reason = reason
        self.circuit_open = circuit_open  # held back by the open circuit
        self.probed_at = probed_at  # when the circuit last probed the provider (epoch seconds)


_QUOTA = "the language model account has no quota left; an administrator must add credit"


def classify(exc: openai.OpenAIError) -> LLMError:
    """Map an SDK exception to an LLMError with a stable, user-facing code."""
    if isinstance(exc, openai.APITimeoutError):
        return LLMError("llm_timeout", "the language model timed out", retryable=True)
    if isinstance(exc, openai.APIConnectionError):
        return LLMError(
            "llm_unreachable", "the language model could not be reached", retryable=True
        )
    if not isinstance(exc, openai.APIStatusError):
        return LLMError("llm_error", str(exc), retryable=False)
    code = str(getattr(exc, "code", None) or "")
    status = exc.status_code
    message = str(exc.message)
    if code == "insufficient_quota":
        return LLMError("insufficient_quota", _QUOTA, retryable=False)
    if status == 429 and "request too large" in message.lower():
        return LLMError(
            "request_too_large",
            "the question and its passages exceed the model's per-minute token limit",
            retryable=False,
        )
    if status == 429:
        wait = retry_after_seconds(exc.response.headers, message)
        return LLMError(
            "rate_limited", "the language model is busy", retryable=True, retry_after=wait
        )
    if status in (401, 403):
        return LLMError(
            "llm_auth_failed", "the language model rejected our credentials", retryable=False
        )
    if status in (408, 409) or status >= 500:
        wait = retry_after_seconds(exc.response.headers, message)
        return LLMError(
            "llm_unavailable",
            "the language model had a server error",
            retryable=True,
            retry_after=wait,
        )
    return LLMError(
        "llm_bad_request", f"the language model refused the request: {message}", retryable=False
    )
