"""Markup protection of chapters, on the sample book and a real third-party textbook."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from common.book.chapters import (
    PLACEHOLDER,
    MarkupLost,
    StreamRestorer,
    cache_key,
    protect,
    restore,
)
from common.book.ingest.documents import parse_markdown
from tests.support.stack import REPO_ROOT

SAMPLE_BOOK = REPO_ROOT / "examples" / "textbook"
# A third-party Docusaurus textbook, read at test time (its text is not part of bookchat).
CORPUS = Path("/work/shared/corpus/physical-ai-textbook")
FENCE = re.compile(r"^[ \t>]*(`{3,}|~{3,}).*?^[ \t>]*\1[ \t]*$", re.M | re.S)
INLINE_CODE = re.compile(r"(`+)[^`\n]+?\1")
LINK_URL = re.compile(r"\]\(([^)\s]+)")
WORD = re.compile(r"⟦P\d+⟧|([^\W\d_][\w'-]*)")


def _pages(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.md*") if p.suffix in (".md", ".mdx"))


def _book_pages() -> list[Path]:
    corpus = _pages(CORPUS) if CORPUS.is_dir() else []
    return _pages(SAMPLE_BOOK) + corpus


def _translate(text: str) -> str:
    """A stand-in model: every prose word changes, placeholders are copied."""
    return WORD.sub(lambda m: f"ur_{m.group(1)}" if m.group(1) else m.group(0), text)


def test_the_corpus_is_there() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"the third-party textbook is not at {CORPUS}")
    assert len(_pages(CORPUS)) > 50


@pytest.mark.parametrize("page", _book_pages(), ids=lambda p: p.name)
def test_protect_then_restore_gives_the_page_back(page: Path) -> None:
    markdown = page.read_text(encoding="utf-8")

    protected = protect(markdown, pin_anchors=False)

    assert restore(protected.text, protected.table) == markdown


@pytest.mark.parametrize("page", _book_pages(), ids=lambda p: p.name)
def test_code_commands_links_and_anchors_survive_a_translation(page: Path) -> None:
    markdown = page.read_text(encoding="utf-8")
    protected = protect(markdown)

    translated = restore(_translate(protected.text), protected.table)

    for block in (m.group(0) for m in FENCE.finditer(markdown)):
        assert block in translated
    for code in (m.group(0) for m in INLINE_CODE.finditer(FENCE.sub("", markdown))):
        assert code in translated
    for url in LINK_URL.findall(FENCE.sub("", markdown)):
        assert f"]({url}" in translated
    # The page's anchors as the indexer computes them, pinned on the translated headings.
    document = parse_markdown(markdown, page.name)
    for section in document.sections:
        if section.anchor:
            assert f"{{#{section.anchor}}}" in translated, section.heading_path
    # And the prose did change.
    assert "ur_" in translated


def test_a_sample_chapter_keeps_front_matter_imports_tags_and_admonitions() -> None:
    markdown = (SAMPLE_BOOK / "02-simulation" / "gazebo-and-digital-twins.mdx").read_text()
    protected = protect(markdown)
    front_matter = markdown.split("---", 2)[1]

    assert front_matter not in protected.text
    assert "<Tabs" not in protected.text and "<TabItem" not in protected.text
    assert not re.search(r"^import ", protected.text, re.M)
    translated = restore(_translate(protected.text), protected.table)
    assert translated.startswith(f"---{front_matter}---")
    assert translated.count("<TabItem") == markdown.count("<TabItem")
    assert ":::note" not in protected.text and ":::note" in translated


def test_link_text_is_translatable_but_its_url_is_not() -> None:
    protected = protect('See [the ROS docs](https://docs.ros.org/en/jazzy/ "ROS") now.\n')

    assert "the ROS docs" in protected.text
    assert "docs.ros.org" not in protected.text
    translated = restore(_translate(protected.text), protected.table)
    assert translated == (
        'ur_See [ur_the ur_ROS ur_docs](https://docs.ros.org/en/jazzy/ "ROS") ur_now.\n'
    )


def test_explicit_and_repeated_heading_anchors() -> None:
    markdown = "# Setup {#install}\n\n## Usage\n\ntext\n\n## Usage\n"

    translated = restore(_translate(protect(markdown).text), protect(markdown).table)

    assert translated.splitlines()[0] == "# ur_Setup {#install}"
    assert "## ur_Usage {#usage}" in translated
    assert "## ur_Usage {#usage-1}" in translated


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda text, name: text.replace(name, "", 1), "missing"),
        (lambda text, name: text + name, "repeated"),
        (lambda text, _name: text + "⟦P999⟧", "unknown"),
    ],
)
def test_restore_refuses_a_text_whose_placeholders_went_astray(
    damage: Callable[[str, str], str], problem: str
) -> None:
    protected = protect("Run `ros2 topic list` and read [docs](https://ros.org).\n")
    name = next(iter(protected.table))

    with pytest.raises(MarkupLost) as caught:
        restore(damage(protected.text, name), protected.table)

    assert getattr(caught.value, problem)
    assert problem in str(caught.value)


def test_streamed_deltas_restore_to_the_same_text_however_they_are_cut() -> None:
    markdown = (SAMPLE_BOOK / "01-ros2" / "nodes-and-topics.md").read_text()
    protected = protect(markdown)
    model_text = _translate(protected.text)
    for size in (1, 3, 7, 64):
        restorer = StreamRestorer(protected.table)
        parts = [restorer.feed(model_text[i : i + size]) for i in range(0, len(model_text), size)]
        streamed = "".join(parts) + restorer.flush()
        assert streamed == restore(model_text, protected.table)
        assert not PLACEHOLDER.search(streamed)


def test_cache_keys_separate_every_input() -> None:
    base = ("translate", "a" * 64, "ur", "gpt-4o-mini", "v1")
    keys = {
        cache_key(*base),
        cache_key("personalize", *base[1:]),
        cache_key(base[0], "b" * 64, *base[2:]),
        cache_key(*base[:2], "profile-hash", *base[3:]),
        cache_key(*base[:3], "gpt-4o", base[4]),
        cache_key(*base[:4], "v2"),
    }

    assert len(keys) == 6
    assert all(len(key) == 64 for key in keys)
    assert cache_key(*base) == cache_key(*base)
