"""Deterministic simulated model output: grounded answers, chapter rewrites, hashed embeddings."""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from typing import Any

_PASSAGE = re.compile(r"^[ \t]*\[(\d+)\][ \t]*(.*?)(?=^[ \t]*\[\d+\]|\Z)", re.M | re.S)
_PROMPT_ROLES = {"system", "developer", "user"}
# bookchat's chapter prompts start with this line (common/llm/chapter_prompts.py); the
# simulator mimics a provider, so it matches the text instead of importing bookchat.
CHAPTER_PROMPT_MARK = "You rewrite one chapter of a robotics textbook."
# ... and follow-up rewrites with this one (common/llm/rewrite.py).
REWRITE_PROMPT_MARK = "You rewrite a reader's follow-up question"
# ... and insights' gap findings with this one (common/admin/insights/findings.py).
INSIGHTS_PROMPT_MARK = "You advise the author of an online textbook."
# Fault switch: a request that contains this text gets a rewrite missing one placeholder.
DROP_PLACEHOLDER_MARK = "sim:drop-placeholder"
URDU_PREFIX = "اردو·"
PERSONALIZED_NOTE = "Simulated note for this reader."
_PLACEHOLDER_OR_WORD = re.compile(r"(?P<placeholder>⟦P\d+⟧)|(?P<word>[^\W\d_][\w'\u2019-]*)")


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
    """A chapter rewrite for chapter prompts; else quote passages [1] (and [2]) with markers."""
    system = next(
        (message_text(m.get("content")) for m in messages if m.get("role") == "system"), ""
    )
    if system.startswith(CHAPTER_PROMPT_MARK):
        return rewrite_chapter(messages, system)
    if system.startswith(REWRITE_PROMPT_MARK):
        return rewrite_follow_up(messages)
    if system.startswith(INSIGHTS_PROMPT_MARK):
        return gap_finding(messages)
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


def gap_finding(messages: list[dict[str, Any]]) -> str:
    """A finding about the first question listed, and a suggestion naming the closest page."""
    prompt = next(
        (message_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), ""
    )
    questions = re.findall(r"^- (.*)$", prompt, re.M)
    subject = questions[0].strip() if questions else "this topic"
    return (
        f'Finding: readers ask "{subject}" and the book has no passage that answers it.\n'
        f'Suggestion: add a short section on "{subject}" near the closest passage.'
    )


def rewrite_follow_up(messages: list[dict[str, Any]]) -> str:
    """A standalone question: the follow-up with the reader's previous question as its subject."""
    prompt = next(
        (message_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), ""
    )
    asked = re.findall(r"^Reader: (.*)$", prompt, re.M)
    follow_up = re.findall(r"^Follow-up question: (.*)$", prompt, re.M)
    question = follow_up[-1].strip() if follow_up else ""
    if not asked:
        return question
    return f"{question.rstrip('?')} (regarding: {asked[-1].strip().rstrip('?')})?"


def rewrite_chapter(messages: list[dict[str, Any]], system: str) -> str:
    """The user's chapter with every placeholder kept: prose words prefixed when translating.

    A personalized rewrite keeps the words and adds a closing note. With the drop switch in
    any message, the last placeholder goes missing, as a careless model's output would.
    """
    chapter = next(
        (message_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), ""
    )
    if "Task: translate." in system:

        def transform(match: re.Match[str]) -> str:
            word = match.group("word")
            return URDU_PREFIX + word if word else match.group(0)

        text = _PLACEHOLDER_OR_WORD.sub(transform, chapter)
    else:
        text = f"{chapter.rstrip()}\n\n{PERSONALIZED_NOTE}\n"
    if any(DROP_PLACEHOLDER_MARK in message_text(m.get("content")) for m in messages):
        placeholders = re.findall(r"⟦P\d+⟧", text)
        if placeholders:
            cut = text.rindex(placeholders[-1])
            text = text[:cut] + text[cut + len(placeholders[-1]) :]
    return text


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
