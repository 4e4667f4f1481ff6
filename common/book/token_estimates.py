"""Estimating token counts without a tokenizer (tiktoken would download its tables at run time).

Two estimates for two jobs: chunk budgets want a safe upper bound on what a passage will cost
in any prompt; the rate limiter wants what the provider charges at admission, which it
computes from characters alone.
"""

from __future__ import annotations

import math


def estimate_tokens(text: str) -> int:
    """A safe upper estimate of the tokens in `text`: max(chars / 4, words * 1.3), rounded up."""
    if not text:
        return 0
    return math.ceil(max(len(text) / 4, len(text.split()) * 1.3))


def admission_tokens(text: str) -> int:
    """Tokens the provider charges for `text` at admission (about four characters a token)."""
    return math.ceil(len(text) / 4)


# What a chat answer's prompt holds besides the question, at its largest in practice: the
# instructions with a reader's profile, each retrieved passage (chunks are cut at 300
# estimated tokens, plus a heading line), and each earlier turn (a question and an answer).
INSTRUCTION_TOKENS = 1000
PASSAGE_TOKENS = 330
TURN_TOKENS = 250  # the earlier question; its answer counts at the output limit
REWRITE_OUTPUT_TOKENS = 100  # a follow-up is first rewritten into a standalone search


def estimate_answer_tokens(
    message: str,
    selected_text: str | None,
    *,
    follow_up: bool,
    passages: int,
    history_turns: int,
    max_output_tokens: int,
) -> int:
    """What answering one chat question may cost, erring high: reserved at submit.

    A follow-up carries the conversation's last turns twice (the search rewrite and the
    answer); a first question carries none.
    """
    question = admission_tokens(message) + admission_tokens(selected_text or "")
    answer = INSTRUCTION_TOKENS + passages * PASSAGE_TOKENS + question + max_output_tokens
    if not follow_up:
        return answer
    history = history_turns * (TURN_TOKENS + max_output_tokens)
    rewrite = INSTRUCTION_TOKENS + admission_tokens(message) + REWRITE_OUTPUT_TOKENS
    return answer + history + rewrite + history
