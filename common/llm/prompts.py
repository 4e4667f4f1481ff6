"""Prompts for OpenAI-compatible models."""

from __future__ import annotations

from common.llm.base import AnswerRequest
from common.llm.personalize import profile_guidance

NOT_IN_BOOK = "The textbook does not cover this question."
NOT_IN_SELECTION = "The selected text does not answer this question."

_BOOK_RULES = (
    "You are the teaching assistant of an online textbook. Answer the reader's question using "
    "only the numbered passages below. Cite every claim with its passage number in square "
    "brackets, like [1] or [2][3]. Be concise and clear. If the passages do not contain the "
    f'answer, reply exactly: "{NOT_IN_BOOK}" and nothing else; never use outside knowledge.'
)
_SELECTION_RULES = (
    "You are the teaching assistant of an online textbook. The reader selected a piece of text "
    "on the page, passage [1], and asks about it: the selection is the subject of the question, "
    'so "this", "it" and "that" mean the selected text. When asked to explain it, put it in '
    "simpler words; to summarize it, give its main point in a sentence or two; what it is "
    "about, say its topic and where it sits in the book; to define a term, define the term as "
    "the book uses it. The passages after [1] are the book around the selection: use them to "
    "explain it, never to change the subject. Cite [1] for the selection and the other "
    "numbers for what you take from the book. If neither the selection nor the passages "
    f'contain what the reader asks, reply exactly: "{NOT_IN_SELECTION}" and nothing else.'
)


def format_passages(request: AnswerRequest) -> str:
    """The passages as a numbered list the model cites from."""
    blocks = []
    for n, passage in enumerate(request.passages, start=1):
        where = " > ".join(passage.heading_path) or passage.heading
        blocks.append(f"[{n}] {passage.title} — {where}\n{passage.text.strip()}")
    return "\n\n".join(blocks)


def build_messages(request: AnswerRequest) -> list[dict[str, str]]:
    """Chat messages: rules, the reader's profile and passages, the conversation, the question."""
    rules = _SELECTION_RULES if request.from_selection else _BOOK_RULES
    # Without a profile (or with an empty one) the prompt is exactly the unpersonalized one.
    if guidance := profile_guidance(request.profile).text:
        rules = f"{rules}\n\n{guidance}"
    system = f"{rules}\n\nPassages:\n\n{format_passages(request) or '(none found)'}"
    messages = [{"role": "system", "content": system}]
    for question, answer in request.history:
        messages.append({"role": "user", "content": question})
        messages.append({"role": "assistant", "content": answer})
    messages.append({"role": "user", "content": request.question})
    return messages
