"""Typed settings for every bookchat process, read from the environment and `.env`."""

from __future__ import annotations

import re
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["development", "test", "production"]
PROJECT_ROOT = Path(__file__).resolve().parents[2]
_ORIGIN = re.compile(r"https?://[a-z0-9.-]+(:[0-9]{1,5})?", re.IGNORECASE)

# Labels of answers the answer cache may serve again (off_topic answers never are).
CacheableLabel = Literal["answered", "uncertain", "refused"]


def _answered_only() -> list[CacheableLabel]:
    return ["answered"]


class Settings(BaseSettings):
    """All configuration; each unset service falls back to an embedded default."""

    # The project's .env, then one in the current folder (which wins), from any folder. Frozen:
    # read once, never written afterwards (the command line passes changes down as new copies).
    model_config = SettingsConfigDict(
        env_file=(PROJECT_ROOT / ".env", ".env"), extra="ignore", frozen=True
    )

    environment: Environment = "development"
    var_dir: Path = PROJECT_ROOT / "var"  # the same from any folder
    port: int = Field(default=8000, ge=1, le=65535)

    # Database: SQLite under var/ unless DATABASE_URL is set.
    database_url: str | None = None
    # How long opening a PostgreSQL connection may take (libpq counts whole seconds, 2 or more).
    database_connect_timeout_seconds: int = Field(default=5, ge=2, le=60)
    # How long one PostgreSQL statement may run (the server's statement_timeout); a server that
    # has not answered 2 s after that is hung: the connection is closed (platform/db_deadline.py).
    database_statement_timeout_seconds: float = Field(default=10.0, ge=1, le=600)

    # Redis (broker, events, limiter): a private redis-server unless REDIS_URL is set.
    redis_url: str | None = None
    # A hung Redis is an outage after this long, not a wait (blocking reads add their own block).
    redis_connect_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    redis_socket_timeout_seconds: float = Field(default=5.0, gt=0, le=60)

    # Qdrant: local mode under var/qdrant unless QDRANT_URL is set.
    qdrant_url: str | None = None
    qdrant_api_key: SecretStr | None = None
    qdrant_collection: str = "textbook"

    # LLM: the offline extractive answerer unless OPENAI_API_KEY is set.
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    chat_model: str = "gpt-4o-mini"
    chat_max_tokens: int = Field(default=600, ge=16, le=16000)
    openai_timeout_seconds: float = Field(default=60.0, gt=0)
    embedding_model: str = "text-embedding-3-small"

    # The provider account's limits, shared by every worker (OpenAI tier 1 by default).
    llm_rpm: int = Field(default=500, ge=1)
    llm_tpm: int = Field(default=200_000, ge=1)
    embedding_rpm: int = Field(default=3000, ge=1)
    embedding_tpm: int = Field(default=1_000_000, ge=1)
    llm_burst_seconds: float = Field(default=10.0, gt=0, le=60)
    llm_credit_window_seconds: float = Field(default=60.0, ge=0, le=60)
    llm_headroom: float = Field(default=1.0, gt=0, le=1)

    # Retries and re-queues, explained layer by layer in common/platform/retry_policy.py.
    llm_max_wait_in_process_seconds: float = Field(default=2.0, ge=0)
    llm_call_attempts: int = Field(default=4, ge=1, le=20)
    llm_backoff_max_seconds: float = Field(default=8.0, gt=0)
    llm_circuit_threshold: int = Field(default=5, ge=1)
    llm_circuit_cooldown_seconds: float = Field(default=20.0, gt=0)
    llm_requeue_delay_seconds: float = Field(default=10.0, gt=0)
    # A re-queued job is due again after at most this long, however long the wait it was told.
    job_max_requeue_delay_seconds: float = Field(
        default=300.0,
        gt=0,
        # JOB_MAX_COUNTDOWN_SECONDS, its name while waits were broker countdowns, is still read
        # for one release.
        validation_alias=AliasChoices("job_max_requeue_delay_seconds", "job_max_countdown_seconds"),
    )
    llm_max_job_wait_seconds: float = Field(default=900.0, gt=0)
    broker_visibility_timeout_seconds: int = Field(default=3600, ge=60)
    # Jobs whose worker died: leases, the watchdog, and how many lost attempts before giving up.
    job_lease_seconds: float = Field(default=15.0, ge=3)
    job_max_lost_attempts: int = Field(default=3, ge=1, le=20)
    watchdog_interval_seconds: float = Field(default=1.0, gt=0, le=30)
    broker_missing_grace_seconds: float = Field(default=30.0, ge=5)
    outage_bound_seconds: float = Field(default=20.0, ge=1)

    # Retrieval and the textbook ingested on first start.
    textbook_path: Path = PROJECT_ROOT / "examples" / "textbook"
    textbook_base_url: str = "/"
    # Ingest jobs read only under these folders (symlinks leaving them are never followed);
    # unset or `[]`: the textbook folder alone.
    ingest_roots: list[Path] = Field(default_factory=list, validate_default=True)
    retrieval_k: int = Field(default=5, ge=1, le=20)
    embeddings: Literal["local", "openai"] = "local"
    search_mode: Literal["dense", "sparse", "hybrid"] = "hybrid"

    # Auth: short-lived access tokens, rotating refresh tokens, guests.
    jwt_secret_key: SecretStr | None = None
    access_token_minutes: int = Field(default=15, ge=1)
    refresh_token_days: int = Field(default=30, ge=1)
    guest_token_minutes: int = Field(default=60, ge=1)
    admin_emails: list[str] = Field(default_factory=list)

    # Better Auth (optional): also accept the site's own JWTs, verified against its JWKS.
    better_auth_jwks_url: str | None = None
    better_auth_issuer: str | None = None
    better_auth_audience: str | None = None
    better_auth_algorithms: list[str] = Field(default_factory=lambda: ["EdDSA"])
    better_auth_jwks_cache_seconds: int = Field(default=300, ge=0)

    # Browsers on these origins may call the API (exact "https://host[:port]"; [] = no CORS).
    cors_origins: list[str] = Field(default_factory=list)

    # Limits (flask-limiter syntax, counted in Redis), and daily model-token quotas.
    rate_limit_signup: str = "5/minute;30/hour"
    # Logins (web/login_throttle.py): attempts per address; failed logins per (account,
    # address), past which that address gets 429 for that account; failed logins per account
    # from any address, past which every login for it waits LOGIN_SLOWDOWN_SECONDS (never 429).
    rate_limit_login: str = "10/minute;100/hour"
    rate_limit_login_failures: str = "5/15 minutes"
    rate_limit_login_account_failures: str = "20/15 minutes"
    login_slowdown_seconds: float = Field(default=1.0, ge=0, le=10)
    # Guest tokens per IP: a class of 40 behind one router, each renewing its hour-long token
    # (and a second browser or a cleared storage) fits in 120.
    rate_limit_guest: str = "120/hour"
    rate_limit_submit: str = "30/minute"  # chat and chapter jobs per user
    rate_limit_guest_submit: str = "10/minute"
    rate_limit_feedback: str = "30/minute;300/hour"  # ratings given or withdrawn, per reader
    user_daily_tokens: int = Field(default=200_000, ge=0)  # 0: no quota
    guest_daily_tokens: int = Field(default=20_000, ge=0)

    # Fair shares: open event streams and long-polls (each holds a connection and a waiter)
    # per user (guests are users), per user and job, and per client address across guests
    # (anyone can mint guests); counted in Redis, so they hold across web processes. A slot is
    # renewed at each keep-alive and lapses after its TTL if its process dies.
    stream_limit_per_user: int = Field(default=8, ge=1)
    stream_limit_per_job: int = Field(default=3, ge=1)
    stream_limit_guest_address: int = Field(default=60, ge=1)
    stream_slot_ttl_seconds: int = Field(default=60, ge=35, le=3600)  # > the 30 s long-poll
    stream_ping_seconds: float = Field(default=15.0, gt=0, le=60)
    # The web process's Redis pool: a request finding every connection busy waits this long
    # for one (then 503) instead of failing at once.
    redis_pool_size: int = Field(default=64, ge=2, le=10_000)
    redis_pool_wait_seconds: float = Field(default=5.0, gt=0, le=60)

    # Model spend (accounts/quotas.py, accounts/guest_retention.py): guests from one address share
    # this many tokens a day; every model call of the service together spends at most
    # LLM_DAILY_TOKEN_BUDGET tokens a UTC day (0: no budget; docs/accounts.md, "Worst-case daily
    # spend", prices the default); guests and their data are deleted after this long.
    guest_address_daily_tokens: int = Field(default=200_000, ge=0)
    llm_daily_token_budget: int = Field(default=5_000_000, ge=0)
    guest_retention_days: int = Field(default=7, ge=1)
    guest_purge_interval_seconds: float = Field(default=3600.0, ge=1)

    # Chat jobs.
    chat_job_time_limit_seconds: int = Field(default=180, ge=10)
    history_turns: int = Field(default=4, ge=0, le=20)
    event_retention_seconds: int = Field(default=86400, ge=60)
    # The answer cache (docs/answer-cache.md): a first-turn question that means the same as an
    # answered one (cosine of the two questions' embeddings at least the bound, calibrated by
    # `make bench-answer-cache`) gets that answer without a model call. Entries live in Redis
    # this long, at most this many per (index version, selection, profile, model) bucket.
    answer_cache_enabled: bool = True
    answer_cache_min_similarity: float = Field(default=0.94, ge=0.5, le=1.0)
    answer_cache_ttl_seconds: int = Field(default=7 * 86400, ge=60)
    answer_cache_max_entries: int = Field(default=1000, ge=1)
    # The answer labels (common/jobs/answer_labels.py) whose answers are served again.
    answer_cache_labels: list[CacheableLabel] = Field(default_factory=_answered_only)
    # Threads of each thread-pool chat worker kept for the fast lane of repeats
    # (workers/fast_lane.py): busy chat jobs never hold them. 0: repeats share the chat threads.
    chat_fast_lane_threads: int = Field(default=2, ge=0, le=16)
    # Admission: refuse new chat jobs (503 overloaded) while the backlog is past either bound.
    admission_max_queued: int = Field(default=5000, ge=1)
    admission_max_wait_seconds: float = Field(default=300.0, gt=0)
    admission_cache_seconds: float = Field(default=1.0, ge=0, le=30)

    # Worker efficiency: onnxruntime threads for query embeddings (a spinning thread pool
    # burns CPU while it waits), and how streamed deltas are batched into Redis writes.
    embedding_threads: int | None = Field(default=None, ge=1, le=64)  # None: one per core
    embedding_spinning: bool = False
    # Query vectors each worker process keeps (workers/resources.py): a job claimed again
    # after its rate-limit wait, or a question asked again, is embedded once. 0: off.
    query_vectors_remembered: int = Field(default=2048, ge=0, le=1_000_000)
    # CPU priority of worker processes (nice increment, 0-19): the API comes first.
    worker_nice: int = Field(default=10, ge=0, le=19)
    delta_flush_ms: float = Field(default=50.0, ge=0, le=1000)
    delta_flush_chars: int = Field(default=400, ge=1)

    # Observability: JSON log lines unless LOG_FORMAT=text (the default in development), and
    # a worker's own /metrics on this port (for workers on other hosts than the web server).
    log_format: Literal["json", "text"] | None = None
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # Who may read /metrics and /readyz?detail=true (web/private_probes.py): a Bearer
    # METRICS_TOKEN or an admin's token; unset, also this host's loopback. Both are cached.
    metrics_token: SecretStr | None = None
    metrics_cache_seconds: float = Field(default=2.0, ge=0, le=60)

    @field_validator(
        "database_url",
        "redis_url",
        "qdrant_url",
        "qdrant_api_key",
        "openai_api_key",
        "openai_base_url",
        "jwt_secret_key",
        "log_format",
        "worker_metrics_port",
        "metrics_token",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # Compose files pass `${VAR:-}`: an empty value means "not configured".
        return None if value == "" else value

    @field_validator("cors_origins")
    @classmethod
    def _exact_origins(cls, origins: list[str]) -> list[str]:
        # Exact origins only: no "*", no patterns (flask-cors reads some strings as regexes).
        bad = [o for o in origins if not _ORIGIN.fullmatch(o)]
        if bad:
            raise ValueError(f"CORS_ORIGINS takes origins like https://book.example.com: {bad}")
        return [o.lower() for o in origins]

    @field_validator("ingest_roots")
    @classmethod
    def _default_ingest_roots(cls, roots: list[Path], info: ValidationInfo) -> list[Path]:
        textbook = info.data.get("textbook_path")
        return roots or ([textbook] if textbook else [])

    @model_validator(mode="after")
    def _slots_outlive_pings(self) -> Settings:
        # An open stream renews its slot at each ping: the slot must not lapse in between.
        if self.stream_slot_ttl_seconds < 2 * self.stream_ping_seconds:
            raise ValueError("STREAM_SLOT_TTL_SECONDS must be at least twice STREAM_PING_SECONDS")
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.environment != "production":
            return self
        missing = [
            name
            for name, value in (
                ("JWT_SECRET_KEY", self.jwt_secret_key),
                ("DATABASE_URL", self.database_url),
                ("REDIS_URL", self.redis_url),
            )
            if not value
        ]
        if missing:
            raise ValueError(f"production needs {', '.join(missing)} to be set")
        secret = self.jwt_secret_key.get_secret_value() if self.jwt_secret_key else ""
        if len(secret) < 32:
            raise ValueError("JWT_SECRET_KEY must be at least 32 characters in production")
        if self.metrics_token and len(self.metrics_token.get_secret_value()) < 32:
            raise ValueError("METRICS_TOKEN must be at least 32 characters in production")
        return self

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL, defaulting to a SQLite file under var/."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.var_dir / 'bookchat.db').resolve()}"

    @property
    def qdrant_path(self) -> Path:
        """Folder of the local-mode Qdrant store."""
        return self.var_dir / "qdrant"

    @property
    def uses_openai(self) -> bool:
        """Whether answers come from an OpenAI-compatible model rather than the extractive one."""
        return self.openai_api_key is not None

    def jwt_secret(self) -> str:
        """The JWT signing key; in development a random one persisted under var/."""
        if self.jwt_secret_key:
            return self.jwt_secret_key.get_secret_value()
        key_file = self.var_dir / "jwt-secret"
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            key_file.write_text(secrets.token_urlsafe(48))
            key_file.chmod(0o600)
        return key_file.read_text().strip()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
