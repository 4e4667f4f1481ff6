"""What every answerer receives and returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from common.accounts.profiles import ReaderProfileIn
from common.book.retrieval.passages import Passage
from common.llm.metrics import CallStats

DeltaSink = Callable[[str], None]
# A model's finish_reason that cut the answer short, as OpenAI's `incomplete_details.reason`.
INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}


@dataclass(frozen=True)
class AnswerRequest:
    question: str
    passages: list[Passage]
    history: list[tuple[str, str]] = field(default_factory=list)
    from_selection: bool = False
    page_url: str | None = None
    job_id: str | None = None  # books rate-limit slots for this job across re-queues
    profile: ReaderProfileIn | None = None  # the asking reader's background, if they saved one


@dataclass(frozen=True)
class Answer:
    text: str
    model: str
    usage: dict[str, Any] | None = None
    # Profile fields that shaped the text; None when the answerer does not say
    # (see workers.chat_runner).
    profile_applied: tuple[str, ...] | None = None
    # Why the text stops early ("max_output_tokens", "content_filter"); None for a whole answer.
    incomplete_reason: str | None = None


def incomplete_reason(finish_reason: str | None) -> str | None:
    """The `incomplete_details.reason` of a model's finish_reason, or None if it finished."""
    return INCOMPLETE_REASONS.get(finish_reason or "")


class Answerer(Protocol):
    """Writes an answer grounded in the request's passages, streaming deltas to `on_delta`.

    `on_restart` is called when a retried model call starts the answer again, so listeners
    can drop the partial text; `stats` collects what the call cost.
    """

    def generate(
        self,
        request: AnswerRequest,
        on_delta: DeltaSink,
        stats: CallStats,
        on_restart: Callable[[], None] = ...,
    ) -> Answer: ...


class GenerationStopped(Exception):
    """Raised by a delta sink to stop generation (the job was cancelled)."""
