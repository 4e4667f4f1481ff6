"""Page-aware retrieval: the reader's page and chapter rise; the rest of the book stays."""

from __future__ import annotations

import pytest
from qdrant_client import QdrantClient

from common.book.retrieval.embeddings import LocalMiniLM
from common.book.retrieval.guardrail import Guardrail
from common.book.retrieval.pages import PageMap, Preference, page_path
from common.book.retrieval.retriever import Retriever
from common.book.retrieval.search import TextbookSearch
from common.book.retrieval.store import TextbookIndex
from tests.support.stack import REPO_ROOT
from workers.indexing import ingest_tree

SAMPLE_BOOK = REPO_ROOT / "examples" / "textbook"
QUESTION = "How are actions represented?"
ROS_PAGE = "/docs/ros2/nodes-and-topics"
VLA_PAGE = "https://book.example.org/docs/vla/vision-language-action/?tab=1#grounding"


def test_page_path_drops_host_query_anchor_and_trailing_slash() -> None:
    assert page_path(VLA_PAGE) == "/docs/vla/vision-language-action"
    assert page_path("/docs/a%20b/#x") == "/docs/a b"
    assert page_path("/") == "/"


def test_the_page_and_its_chapter_are_preferred() -> None:
    pages = PageMap(
        [
            ("/docs/ros2/nodes#what-is-a-node", "textbook", "01-ros2/nodes.md"),
            ("/docs/#welcome", "textbook", "intro.md"),
        ]
    )
    assert pages.preferences("/docs/ros2/nodes/", 0.4, 0.2) == [
        Preference("textbook", "01-ros2/nodes.md", 0.4),
        Preference("textbook", "01-ros2", 0.2),
    ]
    # A top-level page's folder is the whole book: only the page itself is preferred.
    assert pages.preferences("/docs", 0.4, 0.2) == [Preference("textbook", "intro.md", 0.4)]
    assert pages.preferences("/docs/elsewhere", 0.4, 0.2) == []
    assert pages.preferences(None) == []


@pytest.fixture(scope="module")
def retriever() -> Retriever:
    embedder = LocalMiniLM()
    index = TextbookIndex(QdrantClient(":memory:"), "textbook", embedder.name, embedder.dimension)
    ingest_tree(index, embedder, SAMPLE_BOOK, "/docs/")
    return Retriever(TextbookSearch(index, embedder), Guardrail())


def sources(retriever: Retriever, page_url: str | None) -> list[str]:
    return [p.source for p in retriever.retrieve(QUESTION, 5, page_url=page_url).passages]


def test_the_readers_page_comes_first_without_hiding_the_rest(retriever: Retriever) -> None:
    from_vla = sources(retriever, VLA_PAGE)
    from_ros = sources(retriever, ROS_PAGE)

    assert from_vla[0] == "03-vla/vision-language-action.md"
    assert from_ros[0] == "01-ros2/nodes-and-topics.md"
    assert "01-ros2/nodes-and-topics.md" in from_vla
    assert "03-vla/vision-language-action.md" in from_ros
    assert from_ros.count("01-ros2/nodes-and-topics.md") > sources(retriever, None).count(
        "01-ros2/nodes-and-topics.md"
    )


def test_an_unknown_page_changes_nothing(retriever: Retriever) -> None:
    assert sources(retriever, "/docs/not-a-page") == sources(retriever, None)
