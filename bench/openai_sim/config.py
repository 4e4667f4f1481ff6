"""Configuration of the OpenAI-compatible simulator."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class ConfigError(Exception):
    """A configuration change names an unknown field or has the wrong type."""


@dataclass
class SimConfig:
    """Behaviour of one simulator: limits, latency, fault injection and logging.

    Limits of 0 mean unlimited. Rates are probabilities in [0, 1] drawn from a
    RNG seeded with `seed`. `fail_next` is consumed in order, one status per
    model request (chat or embeddings).
    """

    model: str = "gpt-4o-mini"
    organization: str = "org-sim"
    rpm: int = 0
    tpm: int = 0
    ttft_s: float = 0.05
    per_token_s: float = 0.0
    embedding_dim: int = 1536
    default_max_tokens: int = 1000
    error_500_rate: float = 0.0
    error_503_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_sleep_s: float = 30.0
    insufficient_quota: bool = False
    charge_rejected_requests: bool = False
    fail_next: list[int] = field(default_factory=list)
    # "length" or "content_filter": chat answers stop halfway with that finish_reason.
    finish_reason: str = ""
    seed: int = 0
    log_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration as a JSON-friendly dict."""
        return dataclasses.asdict(self)


_NON_NEGATIVE = {
    "rpm",
    "tpm",
    "ttft_s",
    "per_token_s",
    "default_max_tokens",
    "timeout_sleep_s",
}
FINISH_REASONS = {"", "length", "content_filter"}  # "": the answer ends by itself
_PROBABILITIES = {"error_500_rate", "error_503_rate", "timeout_rate"}


def _check_value(name: str, value: Any, current: Any) -> Any:
    """Return `value` coerced to the type of field `name`, or raise ConfigError."""
    if name == "log_path":
        if value is None or isinstance(value, str):
            return value
        raise ConfigError("log_path must be a string or null")
    if name == "finish_reason":
        if value in FINISH_REASONS:
            return value
        raise ConfigError(f"finish_reason must be one of {sorted(FINISH_REASONS)}")
    if name == "fail_next":
        if isinstance(value, list) and all(
            isinstance(v, int) and not isinstance(v, bool) and 100 <= v <= 599 for v in value
        ):
            return list(value)
        raise ConfigError("fail_next must be a list of HTTP status codes")
    # bool is a subclass of int, so it is checked before the numeric kinds.
    if isinstance(current, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(value, bool):
        pass
    elif isinstance(current, int) and isinstance(value, int):
        return _check_range(name, value)
    elif isinstance(current, float) and isinstance(value, (int, float)):
        return _check_range(name, float(value))
    elif isinstance(current, str) and isinstance(value, str):
        return value
    raise ConfigError(f"{name} must be of type {type(current).__name__}")


def _check_range(name: str, value: float) -> Any:
    """Refuse negative limits and delays, and probabilities outside [0, 1]."""
    if name in _NON_NEGATIVE and value < 0:
        raise ConfigError(f"{name} must be >= 0")
    if name in _PROBABILITIES and not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name} must be between 0 and 1")
    if name == "embedding_dim" and value < 1:
        raise ConfigError("embedding_dim must be >= 1")
    return value


def apply_config_changes(config: SimConfig, changes: Mapping[str, Any]) -> None:
    """Validate every change first, then apply them all to `config` in place."""
    known = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise ConfigError(f"unknown config field(s): {', '.join(unknown)}")
    checked = {
        name: _check_value(name, value, getattr(config, name)) for name, value in changes.items()
    }
    for name, value in checked.items():
        setattr(config, name, value)
