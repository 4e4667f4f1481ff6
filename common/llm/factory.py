"""Building the LLM layer from settings: the model client and the configured embedder."""

from __future__ import annotations

from functools import cache

import redis

from common.book.retrieval.embeddings import Embedder, LocalMiniLM
from common.llm.circuit import CircuitBreaker
from common.llm.client import LLMClient
from common.llm.embeddings import OpenAIEmbedder
from common.llm.limiter import Limits, RateLimiter
from common.llm.metrics import Counters
from common.llm.openai_answerer import make_openai_sdk
from common.platform.retry_policy import retry_policy
from common.platform.settings import Settings


def model_limits(settings: Settings, model: str) -> Limits:
    """The configured account limits for a model."""
    if model == settings.embedding_model:
        rpm, tpm = settings.embedding_rpm, settings.embedding_tpm
    else:
        rpm, tpm = settings.llm_rpm, settings.llm_tpm
    return Limits(
        rpm,
        tpm,
        settings.llm_burst_seconds,
        settings.llm_headroom,
        settings.llm_credit_window_seconds,
    )


def make_llm_client(settings: Settings, client: redis.Redis) -> LLMClient:
    """The rate-limited, retrying client every model call goes through."""

    @cache
    def limiter(model: str) -> RateLimiter:
        return RateLimiter(client, model, model_limits(settings, model))

    policy = retry_policy(settings)
    return LLMClient(
        make_openai_sdk(settings),
        limiter,
        CircuitBreaker(client, "openai", policy.circuit_threshold, policy.circuit_cooldown_s),
        Counters(client),
        policy,
    )


def make_embedder(settings: Settings, llm: LLMClient | None) -> Embedder:
    """The configured embedder (`EMBEDDINGS=local|openai`)."""
    if settings.embeddings == "openai":
        if llm is None:
            raise ValueError("EMBEDDINGS=openai needs OPENAI_API_KEY")
        return OpenAIEmbedder(llm, settings.embedding_model)
    return LocalMiniLM(threads=settings.embedding_threads, spinning=settings.embedding_spinning)
