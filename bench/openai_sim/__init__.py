"""OpenAI-compatible HTTP simulator with provider-style rate limits, latency and faults."""

from .app import create_app, get_state
from .config import ConfigError, SimConfig
from .limits import RateLimiter, estimate_tokens, go_duration
from .server import SimulatorHandle, start_simulator
from .state import RequestRecord, SimState

__all__ = [
    "ConfigError",
    "RateLimiter",
    "RequestRecord",
    "SimConfig",
    "SimState",
    "SimulatorHandle",
    "create_app",
    "estimate_tokens",
    "get_state",
    "go_duration",
    "start_simulator",
]
