"""Tests for token estimation and heading-aware chunking."""

from __future__ import annotations

import itertools
import re
import time

import pytest

from common.book.ingest.chunking import chunk_document, split_text
from common.book.ingest.documents import parse_document, parse_markdown
from common.book.token_estimates import estimate_tokens
from tests.support.stack import REPO_ROOT

CORPUS = REPO_ROOT.parent / "shared" / "corpus" / "physical-ai-textbook"

SMALL = """\
---
title: Sensors
---
Sensors let robots perceive the world.

## Cameras

Cameras capture images.

## Lidar

Lidar measures distance with lasers.
"""


def sentences(count: int, prefix: str = "Sentence") -> str:
    sentence = "{} number {} talks about robot joints and motors."
    return " ".join(sentence.format(prefix, i) for i in range(count))


def test_estimate_tokens_uses_words_or_characters() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("one two three four five six seven eight nine ten") == 13
    assert estimate_tokens("x" * 400) == 100
    assert estimate_tokens("a_b.c(d)=e[f]" * 10) == 33


def test_one_chunk_per_small_section() -> None:
    doc = parse_markdown(SMALL, "hardware/sensors.md", "/docs/")
    chunks = chunk_document(doc)
    assert [c.text for c in chunks] == [
        "Sensors let robots perceive the world.",
        "Cameras capture images.",
        "Lidar measures distance with lasers.",
    ]
    assert [c.url for c in chunks] == [
        "/docs/hardware/sensors",
        "/docs/hardware/sensors#cameras",
        "/docs/hardware/sensors#lidar",
    ]
    assert [c.index for c in chunks] == [0, 1, 2]
    assert [c.heading for c in chunks] == ["Sensors", "Cameras", "Lidar"]
    assert all(c.source == "hardware/sensors.md" and c.title == "Sensors" for c in chunks)


def test_chunking_is_deterministic_and_hashes_identity() -> None:
    doc = parse_markdown(SMALL, "hardware/sensors.md")
    first, second = chunk_document(doc), chunk_document(doc)
    assert first == second
    assert len({c.content_hash for c in first}) == len(first)
    moved = chunk_document(parse_markdown(SMALL, "other/sensors.md"))
    assert moved[1].text == first[1].text and moved[1].content_hash != first[1].content_hash


def test_long_prose_splits_on_paragraphs_with_overlap() -> None:
    paragraphs = [sentences(6, f"Para{p}") for p in range(6)]
    text = "\n\n".join(paragraphs)
    pieces = split_text(text, max_tokens=120, overlap_tokens=20)
    assert len(pieces) > 3
    assert all(estimate_tokens(piece) <= 120 for piece in pieces)
    for paragraph in paragraphs:  # every paragraph survives whole in some piece
        assert any(paragraph in piece for piece in pieces)
    for before, after in itertools.pairwise(pieces):
        last_sentence = before.rsplit(". ", 1)[-1]
        assert after.startswith(last_sentence)
        assert estimate_tokens(after.split("\n\n")[0]) <= 20


def test_giant_paragraph_splits_on_sentences_then_words() -> None:
    text = sentences(60) + " " + "word " * 500 + "z" * 3000
    pieces = split_text(text, max_tokens=80, overlap_tokens=10)
    assert all(0 < estimate_tokens(piece) <= 80 for piece in pieces)
    assert "".join(pieces).count("z") >= 3000
    assert any(piece.startswith("Sentence number 0 ") for piece in pieces)


def test_long_code_block_is_refenced_and_never_cut_mid_line() -> None:
    code_lines = [f"    value_{i} = compute(step={i})  # note {i}" for i in range(120)]
    text = "Intro text.\n\n```python\n" + "\n".join(code_lines) + "\n```\n\nAfter text."
    pieces = split_text(text, max_tokens=150, overlap_tokens=20)
    assert all(estimate_tokens(piece) <= 150 for piece in pieces)
    code_pieces = [p for p in pieces if "```python" in p]
    assert len(code_pieces) > 3
    seen: list[str] = []
    for piece in code_pieces:
        block = piece[piece.index("```python") :]
        assert block.endswith("```") or "\n```\n\n" in block
        inner = block.split("\n```")[0].split("\n")[1:]
        assert all(line in code_lines for line in inner)
        seen.extend(inner)
    assert seen == code_lines
    assert pieces[0].startswith("Intro text.") and pieces[-1].endswith("After text.")


def test_long_table_repeats_its_header() -> None:
    rows = [f"| joint {i} | {i * 10} degrees | limit reached at step {i} |" for i in range(80)]
    text = "| Joint | Range | Note |\n| --- | --- | --- |\n" + "\n".join(rows)
    pieces = split_text(text, max_tokens=100, overlap_tokens=10)
    assert len(pieces) > 2
    assert all(p.startswith("| Joint | Range | Note |\n| --- | --- | --- |\n") for p in pieces)
    assert [r for p in pieces for r in p.split("\n")[2:]] == rows


def test_tiny_sections_are_kept_as_their_own_chunks() -> None:
    text = "# Arm\n\n## Base\n\nFixed.\n\n## Wrist\n\n" + sentences(3)
    chunks = chunk_document(parse_markdown(text, "arm.md"))
    assert [c.heading for c in chunks] == ["Base", "Wrist"]
    assert chunks[0].text == "Fixed."


def test_invalid_budgets_are_rejected() -> None:
    with pytest.raises(ValueError):
        split_text("text", max_tokens=5)
    with pytest.raises(ValueError):
        split_text("text", max_tokens=100, overlap_tokens=60)


def fenced_lines(lines: list[str]) -> set[int]:
    """1-based numbers of lines inside (or fencing) ``` / ~~~ blocks, found independently."""
    inside: set[int] = set()
    fence: str | None = None
    for number, line in enumerate(lines, start=1):
        marker = re.match(r"\s*(`{3,}|~{3,})", line)
        if fence is None and marker:
            fence = marker.group(1)
            inside.add(number)
        elif fence is not None:
            inside.add(number)
            if re.fullmatch(rf"\s*{re.escape(fence[0])}{{{len(fence)},}}\s*", line):
                fence = None
    return inside


def test_whole_corpus_parses_and_chunks_within_budget() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"corpus not found at {CORPUS}")
    files = sorted(p for p in CORPUS.rglob("*") if p.suffix in (".md", ".mdx"))
    assert files
    started = time.perf_counter()
    docs = [parse_document(path, CORPUS) for path in files]
    chunks = [chunk for doc in docs for chunk in chunk_document(doc, 300, 40)]
    assert time.perf_counter() - started < 30
    assert all(0 < estimate_tokens(c.text) <= 300 for c in chunks)
    assert len({(c.source, c.index) for c in chunks}) == len(chunks)

    hashes_in_code = 0
    for doc, path in zip(docs, files, strict=True):
        lines = path.read_text(encoding="utf-8").split("\n")
        in_code = fenced_lines(lines)
        hashes_in_code += sum(1 for n in in_code if lines[n - 1].lstrip().startswith("#"))
        for section in doc.sections:
            if not section.anchor:
                continue  # text before the first heading
            assert section.start_line not in in_code, (doc.source, section.heading_path)
            line = lines[section.start_line - 1]
            next_line = lines[section.start_line] if section.start_line < len(lines) else ""
            assert line.lstrip().startswith("#") or set(next_line.strip()) in ({"-"}, {"="})
    assert hashes_in_code > 0  # the corpus does have "# comment" lines inside code
