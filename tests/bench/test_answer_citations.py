"""Every benchmark answer of the offline answerer cites honestly: markers match the citations.

The retrieval benchmark's questions (bench/retrieval_questions.json) are answered over the
sample textbook as the worker does: retrieve with the guardrail, answer, resolve citations.
The fast run embeds with feature hashing (retrieval like keyword search, seconds to ingest);
the slow run uses the shipped MiniLM model, as `make bench-retrieval` does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from qdrant_client import QdrantClient

from bench.openai_sim.content import embed_text
from bench.retrieval import DEFAULT_CORPUS, QUESTIONS
from common.book.retrieval.embeddings import Embedder, LocalMiniLM
from common.book.retrieval.guardrail import Guardrail
from common.book.retrieval.passages import Passage
from common.book.retrieval.retriever import Retriever
from common.book.retrieval.search import TextbookSearch
from common.book.retrieval.store import TextbookIndex
from common.llm.base import AnswerRequest
from common.llm.citations import cited_numbers, resolve_citations, unresolved_markers
from common.llm.extractive import ExtractiveAnswerer
from workers.indexing import ingest_tree

pytestmark = [
    pytest.mark.skipif(not DEFAULT_CORPUS.is_dir(), reason="no shared corpus here"),
    pytest.mark.timeout(300),  # the whole book is ingested once per embedder
    pytest.mark.slow,  # the whole 89-file book: `make test` runs it, `make test-fast` not
]


class HashedEmbedder:
    """Feature-hashing vectors: deterministic, instant, sharing words means a positive cosine."""

    name, dimension = "hashed-test", 256

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return [embed_text(text, self.dimension) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return embed_text(text, self.dimension)


def _minilm() -> Embedder:
    model = LocalMiniLM()
    model.load()
    return model


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(HashedEmbedder, id="hashed"),
        pytest.param(_minilm, id="minilm", marks=[pytest.mark.slow, pytest.mark.timeout(1500)]),
    ],
)
def retriever(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Retriever]:
    embedder = request.param()
    folder = tmp_path_factory.mktemp("qdrant")
    index = TextbookIndex(
        QdrantClient(path=str(folder)), "textbook", embedder.name, embedder.dimension
    )
    report = ingest_tree(index, embedder, DEFAULT_CORPUS)
    assert report.chunks_written > 0 and report.files_failed == 0
    yield Retriever(TextbookSearch(index, embedder), Guardrail())


def _answer(retriever: Retriever, question: str) -> tuple[str, list[Passage]]:
    retrieval = retriever.retrieve(question, k=5)
    passages = retrieval.passages if retrieval.coverage.covered else []
    request = AnswerRequest(question, passages)
    return ExtractiveAnswerer().generate(request, lambda _text: None).text, passages


def _check(text: str, passages: list[Passage]) -> dict[str, Any]:
    """The honesty rules for one answer; returns the resolved answer for counting."""
    cited = resolve_citations(text, passages)
    markers, dangling = cited_numbers(cited.text, len(passages))
    assert dangling == [] and unresolved_markers(cited.text, cited.citations) == []
    assert [c["n"] for c in cited.citations] == markers  # exactly what the markers cite
    for entry in [*cited.citations, *cited.sources]:
        assert entry == passages[entry["n"] - 1].citation(entry["n"])
    numbers = sorted(c["n"] for c in [*cited.citations, *cited.sources])
    assert numbers == list(range(1, len(passages) + 1))  # cited and uncited split the retrieval
    return {"citations": cited.citations, "sources": cited.sources}


def test_every_benchmark_answer_cites_exactly_its_markers(retriever: Retriever) -> None:
    questions = json.loads(Path(QUESTIONS).read_text())
    answered = 0
    for item in questions:
        text, passages = _answer(retriever, item["question"])
        resolved = _check(text, passages)
        if passages and resolved["citations"]:
            answered += 1
        elif passages:  # the answerer declined: it cites nothing, everything is a source
            assert len(resolved["sources"]) == len(passages)
    # The offline answerer quotes and cites for most answerable questions.
    assert answered >= len([q for q in questions if q["source"]]) // 2
