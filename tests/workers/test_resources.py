"""The worker's embedder remembers recent question vectors unless QUERY_VECTORS_REMEMBERED=0."""

from __future__ import annotations

from pathlib import Path

from common.book.retrieval.embeddings import LocalMiniLM
from common.book.retrieval.recent_queries import RecentQueries
from tests.support.stack import make_settings
from workers.resources import WorkerResources


def test_the_worker_embeds_a_question_once_by_default(tmp_path: Path) -> None:
    resources = WorkerResources(make_settings(tmp_path, "redis://127.0.0.1:1/0"))
    embedder = resources.embedder

    assert isinstance(embedder, RecentQueries) and embedder.size == 2048
    assert isinstance(embedder.embedder, LocalMiniLM)
    first = embedder.embed_query("What is a ROS 2 node?")
    assert embedder.embed_query("What is a ROS 2 node?") == first
    assert (embedder.hits, embedder.misses) == (1, 1)
    # Retrieval searches with the same embedder, so a re-claimed job does not embed again.
    assert resources.retriever.search.embedder is embedder


def test_zero_turns_the_memory_off(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "redis://127.0.0.1:1/0", query_vectors_remembered=0)

    assert isinstance(WorkerResources(settings).embedder, LocalMiniLM)
