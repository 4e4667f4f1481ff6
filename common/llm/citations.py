"""Honest citations: the passages an answer's `[n]` markers cite, and the rest set apart.

Every answerer numbers the passages it was given from 1 and cites passage n as `[n]` (a model
is told so in common/llm/prompts.py; the offline answerer writes the markers itself). This
module reads the final text only, so it holds for any answerer: `citations` are exactly the
passages some marker names, numbered as the markers; `sources` are the passages retrieved but
not cited, with their retrieval number; a marker that names no passage is dropped from the text.
Markers inside code (fenced blocks or inline backticks) are code, not citations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from common.book.retrieval.passages import Passage

# `[3]`, `[2, 3]` or `[2][3]`; not `x[0]` (an index), not `[1](url)` (a link).
_MARKER = re.compile(r"(?<![\w)])\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\](?!\()")
_CODE = re.compile(r"```.*?(?:```|\Z)|~~~.*?(?:~~~|\Z)|`[^`\n]*`", re.S)


@dataclass(frozen=True)
class CitedAnswer:
    """The answer text with only resolvable markers, what it cites, and what it left uncited."""

    text: str
    citations: list[dict[str, Any]] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)  # marker numbers that named no passage


def _code_spans(text: str) -> list[tuple[int, int]]:
    return [match.span() for match in _CODE.finditer(text)]


def _in_code(position: int, spans: list[tuple[int, int]]) -> bool:
    return any(start <= position < end for start, end in spans)


def cited_numbers(text: str, count: int) -> tuple[list[int], list[int]]:
    """The passage numbers (1..count) the text's markers cite, and those that name nothing."""
    cited: list[int] = []
    dangling: list[int] = []
    spans = _code_spans(text)
    for match in _MARKER.finditer(text):
        if _in_code(match.start(), spans):
            continue
        for part in match.group(1).split(","):
            n = int(part)
            bucket = cited if 1 <= n <= count else dangling
            if n not in bucket:
                bucket.append(n)
    return sorted(cited), dangling


def _drop_dangling(text: str, count: int) -> str:
    """The text with markers that name no passage removed (and lists trimmed to the valid ones)."""
    spans = _code_spans(text)

    def keep(match: re.Match[str]) -> str:
        if _in_code(match.start(), spans):
            return match.group(0)
        valid = [p.strip() for p in match.group(1).split(",") if 1 <= int(p) <= count]
        return f"[{', '.join(valid)}]" if valid else "\0"

    cleaned = _MARKER.sub(keep, text)
    # A removed marker takes the space before it along ("a claim [9]." -> "a claim.").
    return re.sub(r"[ \t]*\0", "", cleaned)


def resolve_citations(text: str, passages: list[Passage]) -> CitedAnswer:
    """Split the retrieved passages into those the answer cites and the uncited sources."""
    cited, dangling = cited_numbers(text, len(passages))
    if dangling:
        text = _drop_dangling(text, len(passages))
    chosen = set(cited)
    return CitedAnswer(
        text=text,
        citations=[passages[n - 1].citation(n) for n in cited],
        sources=[p.citation(n) for n, p in enumerate(passages, start=1) if n not in chosen],
        dropped=dangling,
    )


def unresolved_markers(text: str, citations: list[dict[str, Any]]) -> list[int]:
    """Marker numbers in the text that no citation carries (empty for an honest answer)."""
    numbers = {int(c["n"]) for c in citations}
    found, dangling = cited_numbers(text, 999)
    return [n for n in [*found, *dangling] if n not in numbers]
