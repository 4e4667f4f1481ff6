"""Answers from GPT-4o-mini (or any OpenAI-compatible server) through the rate-limited client."""

from __future__ import annotations

from collections.abc import Callable

import openai

from common.llm.base import Answer, AnswerRequest, DeltaSink, incomplete_reason
from common.llm.client import LLMClient
from common.llm.metrics import CallStats
from common.llm.prompts import build_messages
from common.platform.settings import Settings


def make_openai_sdk(settings: Settings) -> openai.OpenAI:
    """The SDK client for the configured key and base URL; our layer owns retries."""
    assert settings.openai_api_key is not None
    return openai.OpenAI(
        api_key=settings.openai_api_key.get_secret_value(),
        base_url=settings.openai_base_url,
        timeout=settings.openai_timeout_seconds,
        max_retries=0,
    )


class OpenAIAnswerer:
    """Streams a chat completion through the LLM layer, passing each content delta on."""

    def __init__(self, client: LLMClient, model: str, max_tokens: int) -> None:
        self.client = client
        self.model = model
        self.max_tokens = max_tokens

    def generate(
        self,
        request: AnswerRequest,
        on_delta: DeltaSink,
        stats: CallStats,
        on_restart: Callable[[], None] = lambda: None,
    ) -> Answer:
        """Ask the model and stream its answer."""
        completion = self.client.stream_chat(
            self.model,
            build_messages(request),
            self.max_tokens,
            on_delta,
            on_restart,
            stats,
            ticket=request.job_id,
        )
        usage = {
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "total_tokens": completion.prompt_tokens + completion.completion_tokens,
        }
        return Answer(
            text=completion.text,
            model=completion.model,
            usage=usage,
            incomplete_reason=incomplete_reason(completion.finish_reason),
        )
