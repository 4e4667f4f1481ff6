"""What a worker process holds, built once and lazily: database, Redis, Qdrant, models."""

from __future__ import annotations

import os
import socket
import threading
from functools import cached_property

import redis
from sqlalchemy.orm import Session, sessionmaker

from common.book.retrieval.embeddings import Embedder
from common.book.retrieval.guardrail import Guardrail
from common.book.retrieval.recent_queries import RecentQueries
from common.book.retrieval.retriever import Retriever
from common.book.retrieval.search import TextbookSearch
from common.book.retrieval.store import TextbookIndex, make_qdrant
from common.jobs.events import JobEvents
from common.llm.base import Answerer
from common.llm.client import LLMClient
from common.llm.extractive import ExtractiveAnswerer
from common.llm.factory import make_embedder, make_llm_client
from common.llm.openai_answerer import OpenAIAnswerer
from common.platform.db import make_engine, make_session_factory
from common.platform.redis_client import make_redis
from common.platform.retry_policy import RetryPolicy, retry_policy
from common.platform.settings import Settings
from workers.answer_cache import AnswerCache
from workers.leases import LeaseKeeper


class WorkerResources:
    """Connections and models shared by the tasks of one worker process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Named after the Celery worker once it starts; recorded on each attempt it runs.
        self.worker_name = f"{socket.gethostname()}:{os.getpid()}"
        # Set when the worker begins a warm shutdown: running attempts hand their jobs back.
        self.shutting_down = threading.Event()

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        """Database session factory."""
        return make_session_factory(make_engine(self.settings))

    @cached_property
    def retry_policy(self) -> RetryPolicy:
        """How often and how long jobs and model calls are retried."""
        return retry_policy(self.settings)

    @cached_property
    def leases(self) -> LeaseKeeper:
        """Renews the leases of the jobs this process runs."""
        policy = self.retry_policy
        return LeaseKeeper(self.sessions, policy.job_lease_s, policy.lease_renew_s)

    @cached_property
    def redis(self) -> redis.Redis:
        """Redis client for events and heartbeats."""
        return make_redis(self.settings)

    @cached_property
    def events(self) -> JobEvents:
        """Per-job event streams."""
        return JobEvents(self.redis, self.settings.event_retention_seconds)

    @cached_property
    def llm(self) -> LLMClient | None:
        """The rate-limited model client, when a key is configured."""
        return make_llm_client(self.settings, self.redis) if self.settings.uses_openai else None

    @cached_property
    def embedder(self) -> Embedder:
        """The embedding model (offline MiniLM unless EMBEDDINGS=openai); a question asked
        again, or claimed again after a wait, is embedded once."""
        embedder = make_embedder(self.settings, self.llm)
        remembered = self.settings.query_vectors_remembered
        return RecentQueries(embedder, remembered) if remembered else embedder

    @cached_property
    def index(self) -> TextbookIndex:
        """The textbook index (this process owns the local-mode folder)."""
        embedder = self.embedder
        return TextbookIndex(
            make_qdrant(self.settings),
            self.settings.qdrant_collection,
            embedder.name,
            embedder.dimension,
        )

    @cached_property
    def retriever(self) -> Retriever:
        """Search with the coverage guardrail."""
        search = TextbookSearch(self.index, self.embedder, self.settings.search_mode)
        return Retriever(search, Guardrail())

    @cached_property
    def answer_cache(self) -> AnswerCache:
        """Answered questions, shared by every worker through Redis."""
        settings = self.settings
        return AnswerCache(
            self.redis, settings.answer_cache_ttl_seconds, settings.answer_cache_max_entries
        )

    @cached_property
    def answerer(self) -> Answerer:
        """GPT-4o-mini (or compatible) with a key, else the offline extractive answerer."""
        if self.llm is not None:
            settings = self.settings
            return OpenAIAnswerer(self.llm, settings.chat_model, settings.chat_max_tokens)
        return ExtractiveAnswerer()
