"""What every answerer receives and returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from common.retrieval.passages import Passage

DeltaSink = Callable[[str], None]


@dataclass(frozen=True)
class AnswerRequest:
    question: str
    passages: list[Passage]
    history: list[tuple[str, str]] = field(default_factory=list)
    from_selection: bool = False
    page_url: str | None = None


@dataclass(frozen=True)
class Answer:
    text: str
    model: str
    usage: dict[str, Any] | None = None


class Answerer(Protocol):
    """Writes an answer grounded in the request's passages, streaming deltas to `on_delta`."""

    def generate(self, request: AnswerRequest, on_delta: DeltaSink) -> Answer: ...


class GenerationStopped(Exception):
    """Raised by a delta sink to stop generation (the job was cancelled)."""


class LLMError(Exception):
    """A provider failure with a code the user sees; `retryable` says whether to try again."""

    def __init__(self, code: str, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable
