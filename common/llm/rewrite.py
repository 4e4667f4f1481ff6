"""A follow-up rewritten into a standalone question by the model, through the rate-limited layer."""

from __future__ import annotations

from collections.abc import Sequence

from common.llm.client import Completion, LLMClient
from common.llm.metrics import CallStats

# The simulator (bench/openai_sim/content.py) recognises rewrite prompts by this first line.
REWRITE_PROMPT = (
    "You rewrite a reader's follow-up question about a textbook into one standalone question "
    "for searching the book. Replace it, this, that and they with what they refer to in the "
    "conversation, and carry the subject of an elliptical question. If the question already "
    "stands on its own, return it unchanged. Reply with the question only."
)
MAX_TOKENS = 64
ANSWER_CHARS = 300  # of each earlier answer: enough to name its subject, cheap to send
MAX_QUESTION_CHARS = 400


def rewrite_messages(question: str, history: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    """The chat messages that ask for a standalone version of the question."""
    lines = ["Conversation so far:"]
    for asked, answered in history:
        lines.append(f"Reader: {asked}")
        lines.append(f"Assistant: {' '.join(answered.split())[:ANSWER_CHARS]}")
    lines.append(f"Follow-up question: {question}")
    return [
        {"role": "system", "content": REWRITE_PROMPT},
        {"role": "user", "content": "\n".join(lines)},
    ]


def standalone_text(text: str) -> str | None:
    """The model's question, unquoted on one line, or None when it gave no usable question."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    line = lines[0].strip().strip("\"'`").strip() if lines else ""
    return line if 0 < len(line) <= MAX_QUESTION_CHARS else None


def rewrite_with_model(
    client: LLMClient,
    model: str,
    question: str,
    history: Sequence[tuple[str, str]],
    stats: CallStats,
    ticket: str | None = None,
) -> Completion:
    """Ask the model for the standalone question (a short, non-streamed-to-reader call)."""
    return client.stream_chat(
        model,
        rewrite_messages(question, history),
        MAX_TOKENS,
        on_delta=lambda _text: None,
        on_restart=lambda: None,
        stats=stats,
        temperature=0.0,
        ticket=f"{ticket}:rewrite" if ticket else None,
    )
