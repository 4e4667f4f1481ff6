"""Answers from GPT-4o-mini (or any OpenAI-compatible server) through the official SDK."""

from __future__ import annotations

from typing import Any, cast

import openai

from common.llm.base import Answer, AnswerRequest, DeltaSink, LLMError
from common.llm.prompts import build_messages
from common.settings import Settings

_NEVER_RETRY = {"insufficient_quota", "invalid_api_key", "invalid_request_error"}


def make_openai_client(settings: Settings, max_retries: int = 2) -> openai.OpenAI:
    """The SDK client for the configured key and base URL."""
    assert settings.openai_api_key is not None
    return openai.OpenAI(
        api_key=settings.openai_api_key.get_secret_value(),
        base_url=settings.openai_base_url,
        timeout=settings.openai_timeout_seconds,
        max_retries=max_retries,
    )


def classify_error(exc: openai.OpenAIError) -> LLMError:
    """Map an SDK exception to an LLMError with a user-facing code."""
    if isinstance(exc, openai.APIStatusError):
        code = getattr(exc, "code", None) or ""
        if exc.status_code == 429 and code not in _NEVER_RETRY:
            return LLMError("rate_limited", "the language model is busy", retryable=True)
        if code == "insufficient_quota":
            return LLMError(code, "the language model account has no quota left", retryable=False)
        if exc.status_code in (401, 403):
            return LLMError(
                "llm_auth_failed", "the language model rejected our key", retryable=False
            )
        if exc.status_code >= 500:
            return LLMError(
                "llm_unavailable", "the language model had a server error", retryable=True
            )
        return LLMError(
            "llm_bad_request",
            f"the language model refused the request: {exc.message}",
            retryable=False,
        )
    if isinstance(exc, openai.APITimeoutError):
        return LLMError("llm_timeout", "the language model timed out", retryable=True)
    if isinstance(exc, openai.APIConnectionError):
        return LLMError(
            "llm_unreachable", "the language model could not be reached", retryable=True
        )
    return LLMError("llm_error", str(exc), retryable=False)


class OpenAIAnswerer:
    """Streams a chat completion, passing each content delta on."""

    def __init__(self, client: openai.OpenAI, model: str, max_tokens: int) -> None:
        self.client = client
        self.model = model
        self.max_tokens = max_tokens

    def generate(self, request: AnswerRequest, on_delta: DeltaSink) -> Answer:
        """Ask the model and stream its answer."""
        parts: list[str] = []
        usage: dict[str, Any] | None = None
        model = self.model
        try:
            stream = self.client.chat.completions.create(
                model=self.model,
                messages=cast(Any, build_messages(request)),
                max_tokens=self.max_tokens,
                temperature=0.2,
                stream=True,
                stream_options={"include_usage": True},
            )
            for chunk in stream:
                model = chunk.model or model
                if chunk.usage is not None:
                    usage = chunk.usage.model_dump(
                        include={"prompt_tokens", "completion_tokens", "total_tokens"}
                    )
                for choice in chunk.choices:
                    if choice.delta.content:
                        parts.append(choice.delta.content)
                        on_delta(choice.delta.content)
        except openai.OpenAIError as exc:
            raise classify_error(exc) from exc
        return Answer(text="".join(parts), model=model, usage=usage)
