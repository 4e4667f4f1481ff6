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
