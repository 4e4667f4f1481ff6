"""Split parsed documents into token-budgeted chunks, one per heading section when it fits.

Token counts are estimated, not measured: max(characters / 4, words * 1.3), rounded up. The
characters term dominates for code and symbol-heavy text, the words term for plain prose, so the
estimate errs high for both and chunks stay inside real tokenizer budgets without tiktoken.

Every section is kept as its own chunk, however small: merging would give a chunk two headings
and an anchor that only fits half of it, and BM25 over title + heading path still finds tiny
sections. Oversized sections are split on blocks (paragraphs, lists, tables, fenced code), then
lines, then sentences, then words; split code blocks are re-fenced and split tables repeat their
header. A piece after a prose cut starts with the previous piece's last sentences (the overlap).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from common.book.ingest.documents import Document
from common.book.token_estimates import estimate_tokens

_FENCE = re.compile(r"^\s*(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True, slots=True)
class Chunk:
    """A retrievable passage; `url` points at its section's anchor."""

    source: str
    title: str
    url: str
    heading_path: tuple[str, ...]
    text: str
    index: int
    content_hash: str

    @property
    def heading(self) -> str:
        """The innermost heading (the page title for text before the first heading)."""
        return self.heading_path[-1] if self.heading_path else self.title


def chunk_document(doc: Document, max_tokens: int = 300, overlap_tokens: int = 40) -> list[Chunk]:
    """Cut a document into chunks of at most `max_tokens` estimated tokens, in reading order."""
    chunks: list[Chunk] = []
    for section in doc.sections:
        url = f"{doc.url}#{section.anchor}" if section.anchor else doc.url
        for text in split_text(section.text, max_tokens, overlap_tokens):
            digest = hashlib.sha256(
                json.dumps([doc.source, section.heading_path, text]).encode("utf-8")
            ).hexdigest()
            chunks.append(
                Chunk(doc.source, doc.title, url, section.heading_path, text, len(chunks), digest)
            )
    return chunks


def split_text(text: str, max_tokens: int = 300, overlap_tokens: int = 40) -> list[str]:
    """Split section text into pieces of at most `max_tokens`, preferring block boundaries."""
    if max_tokens < 10 or not 0 <= overlap_tokens <= max_tokens // 2:
        raise ValueError("need max_tokens >= 10 and 0 <= overlap_tokens <= max_tokens / 2")
    text = text.strip("\n")
    if not text.strip():
        return []
    if estimate_tokens(text) <= max_tokens:
        return [text]
    unit_budget = max_tokens - overlap_tokens
    units: list[tuple[str, bool]] = []  # (text, is prose)
    for kind, lines in _blocks(text.split("\n")):
        block = "\n".join(lines)
        if estimate_tokens(block) <= max_tokens:
            units.append((block, kind == "text"))
        elif kind == "code":
            units.extend((piece, False) for piece in _split_code(lines, unit_budget))
        elif kind == "table":
            units.extend((piece, False) for piece in _split_table(lines, unit_budget))
        else:
            units.extend((piece, True) for piece in _fit(block, unit_budget))
    return _pack_with_overlap(units, max_tokens, overlap_tokens)


def _blocks(lines: list[str]) -> Iterator[tuple[str, list[str]]]:
    """Yield ("text" | "table" | "code", lines) blocks; fenced code is one block."""
    para: list[str] = []
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if fence and not (fence["fence"][0] == "`" and "`" in fence["info"]):
            if para:
                yield _paragraph_kind(para), para
                para = []
            close = _closing_fence(fence["fence"])
            end = next((j for j in range(i + 1, len(lines)) if close.match(lines[j])), None)
            stop = len(lines) if end is None else end + 1
            yield "code", lines[i:stop]
            i = stop
        elif lines[i].strip():
            para.append(lines[i])
            i += 1
        else:
            if para:
                yield _paragraph_kind(para), para
                para = []
            i += 1
    if para:
        yield _paragraph_kind(para), para


def _paragraph_kind(lines: list[str]) -> str:
    is_table = len(lines) > 1 and all(line.lstrip().startswith("|") for line in lines)
    return "table" if is_table else "text"


def _closing_fence(marker: str) -> re.Pattern[str]:
    return re.compile(rf"^\s*{re.escape(marker[0])}{{{len(marker)},}}\s*$")


def _split_code(lines: list[str], budget: int) -> list[str]:
    opening = lines[0]
    match = _FENCE.match(opening)
    marker = match["fence"] if match else "```"
    closed = len(lines) > 1 and _closing_fence(marker).match(lines[-1]) is not None
    closing = lines[-1] if closed else opening[: len(opening) - len(opening.lstrip())] + marker
    inner = lines[1:-1] if closed else lines[1:]
    room = max(1, budget - estimate_tokens(f"{opening}\n{closing}") - 1)
    pieces = [piece for line in inner for piece in _fit(line, room, level=1)]
    return _pack(pieces, "\n", budget, lambda body: f"{opening}\n{body}\n{closing}")


def _split_table(lines: list[str], budget: int) -> list[str]:
    header_size = 2 if _TABLE_RULE.match(lines[1]) else 1
    header = "\n".join(lines[:header_size])
    room = max(1, budget - estimate_tokens(header) - 1)
    rows = [piece for line in lines[header_size:] for piece in _fit(line, room, level=1)]
    return _pack(rows, "\n", budget, lambda body: f"{header}\n{body}")


def _split_parts(text: str, level: int) -> tuple[list[str], str]:
    if level == 0:
        return text.split("\n"), "\n"
    if level == 1:
        return _SENTENCE_END.split(text), " "
    return text.split(), " "


def _fit(text: str, budget: int, level: int = 0) -> list[str]:
    """Split text into pieces within `budget`: by lines, then sentences, then words."""
    if estimate_tokens(text) <= budget:
        return [text]
    if level > 2:  # one enormous "word": cut by characters
        size = max(1, budget * 4)
        return [text[i : i + size] for i in range(0, len(text), size)]
    parts, joiner = _split_parts(text, level)
    pieces = [piece for part in parts if part.strip() for piece in _fit(part, budget, level + 1)]
    return _pack(pieces, joiner, budget)


def _pack(
    parts: list[str], joiner: str, budget: int, wrap: Callable[[str], str] = lambda s: s
) -> list[str]:
    """Greedily join consecutive parts while the wrapped result stays within `budget`."""
    out: list[str] = []
    current: list[str] = []
    for part in parts:
        if current and estimate_tokens(wrap(joiner.join([*current, part]))) > budget:
            out.append(wrap(joiner.join(current)))
            current = []
        current.append(part)
    if current:
        out.append(wrap(joiner.join(current)))
    return out


def _pack_with_overlap(units: list[tuple[str, bool]], budget: int, overlap: int) -> list[str]:
    pieces: list[str] = []
    current: list[str] = []
    last_is_prose = False
    for unit, is_prose in units:
        if current and estimate_tokens("\n\n".join([*current, unit])) > budget:
            pieces.append("\n\n".join(current))
            tail = _tail(current[-1], overlap) if last_is_prose and overlap else ""
            fits = tail and estimate_tokens(f"{tail}\n\n{unit}") <= budget
            current = [tail] if fits else []
        current.append(unit)
        last_is_prose = is_prose
    if current:
        pieces.append("\n\n".join(current))
    return pieces


def _tail(text: str, budget: int) -> str:
    """The last lines, else sentences, else words of `text` that fit within `budget`."""
    for level in range(3):
        parts, joiner = _split_parts(text, level)
        taken: list[str] = []
        for part in reversed(parts):
            if estimate_tokens(joiner.join([part, *taken])) > budget:
                break
            taken.insert(0, part)
        if taken:
            return joiner.join(taken).strip()
        text = parts[-1]
    return ""
