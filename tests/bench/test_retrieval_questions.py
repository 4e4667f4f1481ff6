"""Checks for the retrieval evaluation question set (bench/retrieval_questions.json)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
QUESTIONS_FILE = REPO_ROOT / "bench" / "retrieval_questions.json"
CORPUS = REPO_ROOT.parent / "shared" / "corpus" / "physical-ai-textbook"

_HEADING = re.compile(r"^ {0,3}#{1,6}\s+(?P<text>.*?)(?:\s+#+)?\s*$")
_FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})")


def load_questions() -> list[dict[str, Any]]:
    return json.loads(QUESTIONS_FILE.read_text(encoding="utf-8"))


def markdown_headings(text: str) -> set[str]:
    """ATX heading texts outside fenced code blocks."""
    headings: set[str] = set()
    fence: str | None = None
    for line in text.splitlines():
        if match := _FENCE.match(line):
            marker = match["fence"]
            if fence is None:
                fence = marker
            elif marker[0] == fence[0] and len(marker) >= len(fence):
                fence = None
            continue
        if fence is None and (match := _HEADING.match(line)):
            headings.add(match["text"])
    return headings


def test_structure() -> None:
    questions = load_questions()
    assert isinstance(questions, list)
    for entry in questions:
        assert set(entry) == {"question", "source", "heading"}, entry
        assert isinstance(entry["question"], str) and entry["question"].strip()
        if entry["source"] is None:
            assert entry["heading"] is None, entry
        else:
            assert isinstance(entry["source"], str) and entry["source"].endswith(".md")
            assert not entry["source"].startswith("/") and ".." not in entry["source"]
            assert isinstance(entry["heading"], str) and entry["heading"].strip()
    answerable = [q for q in questions if q["source"] is not None]
    assert len(answerable) >= 40
    assert len(questions) - len(answerable) >= 10
    texts = [q["question"].strip().lower() for q in questions]
    assert len(set(texts)) == len(texts), "questions must be unique"


def test_answerable_questions_cover_every_module() -> None:
    modules = {q["source"].split("/")[0] for q in load_questions() if q["source"]}
    assert {"module-1", "module-2", "module-3", "module-4"} <= modules


def test_markdown_headings_ignores_code_fences() -> None:
    text = "# Title\n```python\n# not a heading\n```\n## Real One ##\n    # indented code\n"
    assert markdown_headings(text) == {"Title", "Real One"}


@pytest.mark.skipif(not CORPUS.is_dir(), reason="textbook corpus not present beside the repo")
def test_answerable_sources_contain_their_headings() -> None:
    missing: list[str] = []
    cache: dict[str, set[str]] = {}
    for entry in load_questions():
        source = entry["source"]
        if source is None:
            continue
        path = CORPUS / source
        if not path.is_file():
            missing.append(f"{source}: no such file")
            continue
        if source not in cache:
            cache[source] = markdown_headings(path.read_text(encoding="utf-8"))
        if entry["heading"] not in cache[source]:
            missing.append(f"{source}: no heading {entry['heading']!r}")
    assert not missing, "\n".join(missing)
