"""Retrieval benchmark over a real Docusaurus textbook (read from ../shared/corpus).

Ingests the book with the offline embedder into a private local-mode Qdrant, re-ingests it
unchanged, then asks the question set in `bench/retrieval_questions.json` in dense, sparse and
hybrid modes and reports recall@1, recall@5, MRR, the guardrail's refusals, and latencies.

    python -m bench.retrieval [--corpus PATH] [--mode hybrid]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from qdrant_client import QdrantClient

from bench.support import REPO_ROOT, percentile
from common.book.retrieval.embeddings import LocalMiniLM
from common.book.retrieval.guardrail import Guardrail
from common.book.retrieval.passages import Passage
from common.book.retrieval.retriever import Retriever
from common.book.retrieval.search import SEARCH_MODES, SearchMode, TextbookSearch
from common.book.retrieval.store import TextbookIndex
from workers.indexing import ingest_tree

DEFAULT_CORPUS = REPO_ROOT.parent / "shared" / "corpus" / "physical-ai-textbook"
QUESTIONS = Path(__file__).with_name("retrieval_questions.json")


def is_hit(passage: Passage, expected: dict[str, Any]) -> bool:
    """The passage is the expected section or lies inside it."""
    return passage.source == expected["source"] and expected["heading"] in passage.heading_path


def evaluate(
    search: TextbookSearch, questions: list[dict[str, Any]], mode: SearchMode, k: int = 5
) -> dict[str, Any]:
    """Recall@1, recall@k and MRR over the answerable questions, plus search latency."""
    ranks: list[int | None] = []
    latencies: list[float] = []
    for item in questions:
        started = time.perf_counter()
        passages = search.search(item["question"], k=k, mode=mode)
        latencies.append(time.perf_counter() - started)
        ranks.append(next((n for n, p in enumerate(passages, 1) if is_hit(p, item)), None))
    total = len(ranks)
    return {
        "recall_at_1": round(sum(r == 1 for r in ranks) / total, 3),
        "recall_at_5": round(sum(r is not None for r in ranks) / total, 3),
        "mrr": round(sum(1 / r for r in ranks if r) / total, 3),
        "search_p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "search_p95_ms": round(percentile(latencies, 95) * 1000, 1),
    }


def refusals(retriever: Retriever, questions: list[dict[str, Any]], k: int = 5) -> float:
    """The share of questions the guardrail declares not covered by the book."""
    refused = sum(not retriever.retrieve(q["question"], k).coverage.covered for q in questions)
    return round(refused / max(1, len(questions)), 3)


def main() -> None:
    """Ingest, evaluate every mode, print a table and a final JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--mode", choices=SEARCH_MODES, default="hybrid", help="mode in use")
    args = parser.parse_args()
    questions = json.loads(QUESTIONS.read_text())
    answerable = [q for q in questions if q["source"]]
    unanswerable = [q for q in questions if not q["source"]]
    embedder = LocalMiniLM()
    embedder.load()
    with tempfile.TemporaryDirectory() as tmp:
        index = TextbookIndex(QdrantClient(path=tmp), "textbook", embedder.name, embedder.dimension)
        first = ingest_tree(index, embedder, args.corpus)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        second = ingest_tree(index, embedder, args.corpus)
        search = TextbookSearch(index, embedder, args.mode)
        modes = {mode: evaluate(search, answerable, mode) for mode in SEARCH_MODES}
        retriever = Retriever(search, Guardrail())
        refusal_rate = refusals(retriever, unanswerable)
        false_refusals = refusals(retriever, answerable)
    print(
        f"ingest: {first.files_seen} files, {first.chunks_written} chunks in "
        f"{first.seconds:.1f} s ({first.chunks_written / first.seconds:.1f} chunks/s), "
        f"{first.files_failed} failed, peak RSS {peak_mb:.0f} MB"
    )
    print(
        f"re-ingest unchanged: {second.seconds:.2f} s, {second.files_skipped} skipped, "
        f"{second.embeddings_computed} embeddings"
    )
    print(f"questions: {len(answerable)} answerable, {len(unanswerable)} unanswerable\n")
    print("| mode | recall@1 | recall@5 | MRR | search p50 ms | search p95 ms |")
    print("|---|---|---|---|---|---|")
    for mode, m in modes.items():
        print(
            f"| {mode} | {m['recall_at_1']} | {m['recall_at_5']} | {m['mrr']} | "
            f"{m['search_p50_ms']} | {m['search_p95_ms']} |"
        )
    print(
        f"\nguardrail: refuses {refusal_rate:.0%} of unanswerable, "
        f"{false_refusals:.0%} of answerable questions"
    )
    used = modes[args.mode]
    print(
        json.dumps(
            {
                "mode": args.mode,
                **{k: used[k] for k in ("recall_at_1", "recall_at_5", "mrr")},
                "refusal_rate": refusal_rate,
                "false_refusal_rate": false_refusals,
                "ingest_seconds": round(first.seconds, 1),
                "chunks_per_second": round(first.chunks_written / first.seconds, 1),
                "chunks": first.chunks_written,
                "files_failed": first.files_failed,
                "reingest_seconds": round(second.seconds, 2),
                "reingest_embeddings": second.embeddings_computed,
                "peak_rss_mb": round(peak_mb),
                "search_p50_ms": used["search_p50_ms"],
                "search_p95_ms": used["search_p95_ms"],
                "modes": modes,
            }
        )
    )


if __name__ == "__main__":
    main()
