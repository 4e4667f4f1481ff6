"""RecentQueries: a query text is embedded once while it stays among the recent ones."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from common.book.retrieval.embeddings import LocalMiniLM
from common.book.retrieval.recent_queries import RecentQueries


class CountingEmbedder:
    """Vectors from the text's length and first letter; counts what it was asked."""

    name, dimension = "counting", 3

    def __init__(self) -> None:
        self.queries: list[str] = []
        self.documents: list[str] = []

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.documents.extend(texts)
        return [self._vector(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        self.queries.append(text)
        return self._vector(text)

    @staticmethod
    def _vector(text: str) -> list[float]:
        return [float(len(text)), float(ord(text[0])), 0.5]


def test_a_query_asked_again_is_embedded_once_with_the_same_vector() -> None:
    inner = CountingEmbedder()
    memory = RecentQueries(inner, size=16)

    first = memory.embed_query("What is a ROS 2 node?")
    again = memory.embed_query("What is a ROS 2 node?")
    other = memory.embed_query("What is a topic?")

    assert first == again == [21.0, 87.0, 0.5]
    assert other == [16.0, 87.0, 0.5]
    assert inner.queries == ["What is a ROS 2 node?", "What is a topic?"]
    assert (memory.hits, memory.misses) == (1, 2)
    assert (memory.name, memory.dimension) == ("counting", 3)


def test_changing_a_returned_vector_does_not_change_the_remembered_one() -> None:
    memory = RecentQueries(CountingEmbedder(), size=16)
    memory.embed_query("nodes").append(99.0)
    memory.embed_query("nodes")[0] = -1.0

    assert memory.embed_query("nodes") == [5.0, 110.0, 0.5]


def test_the_least_recently_used_query_is_forgotten_first() -> None:
    inner = CountingEmbedder()
    memory = RecentQueries(inner, size=2)
    memory.embed_query("a")
    memory.embed_query("bb")
    memory.embed_query("a")  # now the most recent
    memory.embed_query("ccc")  # forgets "bb"

    memory.embed_query("a")
    memory.embed_query("bb")

    assert inner.queries == ["a", "bb", "ccc", "bb"]


def test_documents_are_embedded_every_time_and_not_remembered_as_queries() -> None:
    inner = CountingEmbedder()
    memory = RecentQueries(inner, size=16)

    assert memory.embed_documents(["x", "yy"]) == [[1.0, 120.0, 0.5], [2.0, 121.0, 0.5]]
    memory.embed_documents(["x"])
    memory.embed_query("x")

    assert inner.documents == ["x", "yy", "x"] and inner.queries == ["x"]


def test_threads_asking_at_once_all_get_the_vector() -> None:
    inner = CountingEmbedder()
    memory = RecentQueries(inner, size=8)
    texts = [f"question {n % 4}" for n in range(64)]
    results: list[list[float]] = []

    def ask(text: str) -> None:
        results.append(memory.embed_query(text))

    threads = [threading.Thread(target=ask, args=(text,)) for text in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == sorted(CountingEmbedder._vector(text) for text in texts)
    assert memory.hits + memory.misses == 64 and len(set(inner.queries)) == 4


def test_minilm_vectors_come_back_unchanged() -> None:
    model = LocalMiniLM()
    memory = RecentQueries(model, size=16)

    first = memory.embed_query("How does a ROS 2 node publish to a topic?")

    assert first == model.embed_query("How does a ROS 2 node publish to a topic?")
    assert memory.embed_query("How does a ROS 2 node publish to a topic?") == first
