"""The rerank step: RRF of two orders, a dense reranker on a fake model, and the real search."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from qdrant_client import QdrantClient

from common.book.retrieval.embeddings import LocalMiniLM
from common.book.retrieval.passages import Passage
from common.book.retrieval.rerank import DenseReranker, rrf_order
from common.book.retrieval.search import TextbookSearch
from common.book.retrieval.store import TextbookIndex
from tests.support.stack import SAMPLE_TEXTBOOK
from workers.indexing import ingest_tree


class KeywordEmbedder:
    """A fake embedder: one axis per keyword, so similarity is keyword overlap."""

    name = "keywords"
    dimension = 3
    KEYWORDS = ("lidar", "camera", "imu")

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text."""
        return [self.embed_query(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        """Counts of each keyword."""
        return [float(text.lower().count(k)) + 0.01 for k in self.KEYWORDS]


def passage(text: str, score: float = 0.5) -> Passage:
    """A retrieved passage."""
    return Passage(source=f"{text}.md", title="T", heading="H", url="/", text=text, score=score)


def test_rrf_order_fuses_two_rankings() -> None:
    # 0: 1/3 + 1/5, 1: 1/4 + 1/3, 2: 1/5 + 1/4 with k=2.
    fused = rrf_order([[0, 1, 2], [1, 2, 0]], k=2)
    assert [item for item, _ in fused] == [1, 0, 2]
    assert fused[0][1] == pytest.approx(1 / 4 + 1 / 3)


def test_dense_reranker_without_fusion_orders_by_the_second_model() -> None:
    reranker = DenseReranker(KeywordEmbedder(), fuse=False)
    first_stage = [passage("camera frames"), passage("imu rates"), passage("lidar scans")]
    reranked = reranker.rerank("how does lidar see", first_stage)
    assert reranked[0].text == "lidar scans"
    assert sorted(p.text for p in reranked) == sorted(p.text for p in first_stage)
    assert reranked[0].score > reranked[1].score


def test_dense_reranker_with_fusion_keeps_a_first_stage_winner_near_the_top() -> None:
    reranker = DenseReranker(KeywordEmbedder(), fuse=True)
    first_stage = [passage("camera frames"), passage("imu rates"), passage("lidar scans")]
    # First stage: camera, imu, lidar; the model: lidar, then camera and imu tied (kept in order).
    reranked = [p.text for p in reranker.rerank("lidar", first_stage)]
    assert reranked == ["camera frames", "lidar scans", "imu rates"]
    assert reranker.rerank("lidar", []) == []


@pytest.fixture(scope="module")
def sample_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TextbookIndex]:
    """The sample book ingested with the real MiniLM into local-mode Qdrant."""
    embedder = LocalMiniLM()
    folder = tmp_path_factory.mktemp("rerank") / "qdrant"
    index = TextbookIndex(
        QdrantClient(path=str(Path(folder))), "textbook", embedder.name, embedder.dimension
    )
    ingest_tree(index, embedder, SAMPLE_TEXTBOOK)
    yield index
    index.client.close()


def test_search_reranks_the_fused_candidates_then_keeps_k(sample_index: TextbookIndex) -> None:
    embedder = LocalMiniLM()
    question = "What is a ROS 2 node?"
    plain = TextbookSearch(sample_index, embedder).search(question, k=10)
    reranker = DenseReranker(embedder, fuse=False)
    reranked = TextbookSearch(sample_index, embedder, reranker=reranker).search(question, k=3)
    assert len(reranked) == min(3, len(plain))
    # The reranker (here plain cosine) decides the order: scores descend, and the top passage
    # is the candidate with the highest dense similarity among the fused candidates.
    assert [p.score for p in reranked] == sorted((p.score for p in reranked), reverse=True)
    assert reranked[0].source == max(plain, key=lambda p: p.similarity).source
    assert reranked[0].similarity == pytest.approx(reranked[0].score, abs=1e-4)
