"""Deterministic simulated model output: grounded answers and hashed embeddings."""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from typing import Any

_PASSAGE = re.compile(r"^[ \t]*\[(\d+)\][ \t]*(.*?)(?=^[ \t]*\[\d+\]|\Z)", re.M | re.S)
_PROMPT_ROLES = {"system", "developer", "user"}


def message_text(content: Any) -> str:
    """Return the text of a message's content, given as a string or a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def find_passages(messages: list[dict[str, Any]]) -> dict[int, str]:
    """Return numbered passages (lines starting `[n]`) from system/developer/user messages."""
    passages: dict[int, str] = {}
    for message in messages:
        if message.get("role") in _PROMPT_ROLES:
            for number, body in _PASSAGE.findall(message_text(message.get("content"))):
                passages.setdefault(int(number), " ".join(body.split()))
    return passages


def build_answer(messages: list[dict[str, Any]]) -> str:
    """Quote passages [1] (and [2]) ending with their citation markers, else echo the question."""
    passages = find_passages(messages)
    if passages.get(1):
        answer = f'According to the passages, "{_quote(passages[1], 12)}" [1]'
        if passages.get(2):
            answer += f'. They also note that "{_quote(passages[2], 8)}" [2]'
        return answer
    last_user = next(
        (message_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), ""
    )
    return f"Simulated answer to: {last_user[:60]}"


def _quote(passage: str, n_words: int) -> str:
    return " ".join(passage.split()[:n_words]).rstrip(".,;:!?")


def embed_text(text: str, dim: int) -> list[float]:
    """Return an L2-normalised feature-hashing vector of the text's words and word pairs.

    Equal texts give equal vectors and texts sharing words have a positive cosine,
    so retrieval over simulated embeddings behaves roughly like keyword search.
    """
    words = re.findall(r"\w+", text.lower())
    features = words + [f"{a} {b}" for a, b in itertools.pairwise(words)] or [text]
    vector = [0.0] * dim
    for feature in features:
        h = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "big")
        vector[(h >> 1) % dim] += 1.0 if h & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]
