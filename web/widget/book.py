"""The demo's sample book: chapters of the configured textbook rendered to safe HTML."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from pathlib import Path

import frontmatter
from markdown_it import MarkdownIt
from markdown_it.token import Token

from common.book.ingest.documents import DocumentError, heading_anchor, parse_document
from common.book.ingest.sources import find_markdown_files

# MDX imports, JSX tags on their own line, and admonition fences (":::tip") are not prose.
_MDX_LINE = re.compile(r"^\s*(import\s.+\sfrom\s|export\s|</?[A-Z][\w.]*[^>]*>\s*$|:::)")


@dataclass(frozen=True)
class Chapter:
    """One page of the book: where it lives in the book and its rendered body."""

    title: str
    url: str  # the page's path in the book, as citations give it ("/ros2/nodes-and-topics")
    html: str


@cache
def _markdown() -> MarkdownIt:
    # Raw HTML off: a page's markup is shown as text, never run.
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    md.core.ruler.push("heading_ids", _add_heading_ids)
    return md


def _add_heading_ids(state: object) -> None:
    # The same anchors as ingest (github-slugger), so a citation's #anchor lands on its heading.
    tokens: list[Token] = state.tokens  # type: ignore[attr-defined]
    seen: dict[str, int] = {}
    for opening, inline in pairwise(tokens):
        if opening.type == "heading_open":
            slug = heading_anchor(inline.content)
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            opening.attrSet("id", slug if count == 0 else f"{slug}-{count}")


def render_markdown(text: str) -> str:
    """A Markdown/MDX page body as HTML with heading ids; raw HTML in it is escaped."""
    body = frontmatter.loads(text).content
    lines = [line for line in body.splitlines() if not _MDX_LINE.match(line)]
    return _markdown().render("\n".join(lines))


@cache
def load_book(root: Path) -> tuple[Chapter, ...]:
    """Every readable page under `root`, in the book's order (folder and file names)."""
    chapters, root = [], root.resolve()
    for source in find_markdown_files(root, [root]).files:
        try:
            doc = parse_document(source.path, root)
        except DocumentError:
            continue
        chapters.append(Chapter(doc.title, doc.url, render_markdown(source.path.read_text())))
    return tuple(chapters)


def find_chapter(chapters: tuple[Chapter, ...], url: str) -> Chapter | None:
    """The chapter at this book path, ignoring a trailing slash."""
    wanted = "/" + url.strip("/")
    return next((c for c in chapters if "/" + c.url.strip("/") == wanted), None)
