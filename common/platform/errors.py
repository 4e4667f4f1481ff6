"""bookchat's own error classes; the web layer maps them to problem+json in one place."""

from __future__ import annotations

from typing import Any, ClassVar


class BookchatError(Exception):
    """Base class: carries an HTTP status, a stable code and a human title."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal server error"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extensions = extensions

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers the response must carry (none by default)."""
        return {}


class InvalidInput(BookchatError):
    status, code, title = 400, "invalid_input", "Invalid input"


class MalformedJSON(InvalidInput):
    code, title = "malformed_json", "Malformed JSON body"


class Unauthorized(BookchatError):
    """401; `challenge`, when given, is sent as the WWW-Authenticate header."""

    status, code, title = 401, "unauthorized", "Authentication required"

    def __init__(
        self, detail: str | None = None, challenge: str | None = None, **extensions: Any
    ) -> None:
        super().__init__(detail, **extensions)
        self.challenge = challenge

    @property
    def headers(self) -> dict[str, str]:
        """The WWW-Authenticate challenge, if any."""
        return {"WWW-Authenticate": self.challenge} if self.challenge else {}


class InvalidCredentials(Unauthorized):
    code, title = "invalid_credentials", "Invalid email or password"


class InvalidToken(Unauthorized):
    code, title = "invalid_token", "Invalid token"


class TokenExpired(Unauthorized):
    code, title = "token_expired", "Token expired"


class Forbidden(BookchatError):
    status, code, title = 403, "forbidden", "Forbidden"


class OriginNotAllowed(Forbidden):
    """403: a browser on a site that CORS_ORIGINS does not list asked for something."""

    code, title = "origin_not_allowed", "Origin not allowed"


class NotFound(BookchatError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(BookchatError):
    status, code, title = 409, "conflict", "Conflict"


class EmailTaken(Conflict):
    """Sign-up refused; says nothing about which address (no account enumeration)."""

    code, title = "signup_failed", "Sign-up failed"


class JobNotCancellable(Conflict):
    code, title = "job_not_cancellable", "Job already finished"


class JobNotRateable(Conflict):
    """Only a finished chat answer (completed or incomplete) can be rated."""

    code, title = "job_not_rateable", "Job has no answer to rate"


class PayloadTooLarge(BookchatError):
    status, code, title = 413, "payload_too_large", "Request body too large"


class UnsupportedMediaType(BookchatError):
    status, code, title = 415, "unsupported_media_type", "Unsupported media type"


class IdempotencyKeyReused(BookchatError):
    status, code, title = 422, "idempotency_key_reused", "Idempotency key reused"


class RetryLater(BookchatError):
    """A refusal that says when to come back: `retry_after` (seconds) as Retry-After and in the
    body."""

    def __init__(self, detail: str, retry_after: int, **extensions: Any) -> None:
        super().__init__(detail, retry_after=retry_after, **extensions)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        """Retry-After in seconds."""
        return {"Retry-After": str(self.retry_after)}


class TooManyRequests(RetryLater):
    status, code, title = 429, "too_many_requests", "Too many requests"


class RateLimited(TooManyRequests):
    code, title = "rate_limited", "Rate limit exceeded"


class GuestLimitReached(RateLimited):
    """429: this address has had its guest tokens for now; sign in, or wait until `resets_at`."""

    code, title = "guest_limit_reached", "Guest limit reached for this address"


class ServiceUnavailable(BookchatError):
    status, code, title = 503, "service_unavailable", "Service unavailable"


class ServiceBusy(RetryLater, ServiceUnavailable):
    """503 with a Retry-After: the service is up but cannot take this now."""


class AuthProviderUnavailable(ServiceUnavailable):
    code, title = "auth_provider_unavailable", "Sign-in provider unavailable"


class ChapterNotFound(NotFound):
    code, title = "chapter_not_found", "Chapter not found"


class ModelNotConfigured(ServiceUnavailable):
    """A feature needs a generative model; `setting` names the setting that enables it."""

    code, title = "model_not_configured", "No generative model configured"


class ProfileRequired(Conflict):
    code, title = "profile_required", "Reader profile required"
