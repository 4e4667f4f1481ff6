"""Conversation-aware retrieval benchmark: follow-up pairs and questions asked from a page.

Ingests the textbook (with a "/docs/" base, as Docusaurus serves it) into a private local-mode
Qdrant, then reports hybrid search over `bench/conversation_cases.json`:

- the second turn of two-turn pairs (follow-ups and topic changes), searched as asked
  (`none`), after the previous question (`concatenation`, the old behaviour) and rewritten
  into a standalone question offline (`rewrite`);
- questions asked from a page, with and without preferring that page and its chapter: the
  page cases (the answer is on the page and elsewhere), the retrieval set asked from its
  answer's page, and the retrieval set asked from an unrelated page.

    python -m bench.conversation_retrieval [--corpus PATH] [--page-weight W] [--chapter-weight W]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from qdrant_client import QdrantClient

from bench.retrieval import DEFAULT_CORPUS, QUESTIONS, is_hit
from common.book.books import DEFAULT_BOOK
from common.book.retrieval.embeddings import LocalMiniLM
from common.book.retrieval.followups import standalone_question
from common.book.retrieval.guardrail import Guardrail, Vocabulary
from common.book.retrieval.pages import CHAPTER_WEIGHT, PAGE_WEIGHT, PageMap, Preference
from common.book.retrieval.passages import Passage
from common.book.retrieval.retriever import Retriever
from common.book.retrieval.search import TextbookSearch
from common.book.retrieval.store import TextbookIndex
from workers.indexing import ingest_tree

CASES = Path(__file__).with_name("conversation_cases.json")
BASE_URL = "/docs/"
K = 5
Strategy = Callable[[dict[str, Any], Vocabulary], str]
STRATEGIES: dict[str, Strategy] = {
    "none": lambda pair, _vocabulary: pair["second"],
    "concatenation": lambda pair, _vocabulary: f"{pair['first']} {pair['second']}",
    "rewrite": lambda pair, vocabulary: standalone_question(
        pair["second"], [(pair["first"], "")], vocabulary
    ),
}


def rank(passages: list[Passage], expected: list[dict[str, Any]]) -> int | None:
    """The 1-based rank of the first passage inside any expected section, or None."""
    return next((n for n, p in enumerate(passages, 1) if any(is_hit(p, e) for e in expected)), None)


def scores(ranks: list[int | None]) -> dict[str, float]:
    """Recall@1, recall@5 and MRR of a list of ranks."""
    total = max(1, len(ranks))
    return {
        "n": len(ranks),
        "recall_at_1": round(sum(r == 1 for r in ranks) / total, 3),
        "recall_at_5": round(sum(r is not None for r in ranks) / total, 3),
        "mrr": round(sum(1 / r for r in ranks if r) / total, 3),
    }


def follow_up_pairs(
    search: TextbookSearch, vocabulary: Vocabulary, pairs: list[dict[str, Any]]
) -> dict[str, dict[str, dict[str, float]]]:
    """Second-turn scores per strategy, for follow-ups, topic changes and all pairs."""
    results: dict[str, dict[str, dict[str, float]]] = {}
    for name, strategy in STRATEGIES.items():
        ranked = [
            (pair["kind"], rank(search.search(strategy(pair, vocabulary), K), pair["expected"]))
            for pair in pairs
        ]
        kinds = sorted({kind for kind, _ in ranked})
        results[name] = {kind: scores([r for k, r in ranked if k == kind]) for kind in kinds}
        results[name]["all"] = scores([r for _, r in ranked])
    return results


def asked_from_pages(
    search: TextbookSearch,
    pages: PageMap,
    cases: list[dict[str, Any]],
    weights: tuple[float, float],
) -> dict[str, dict[str, float]]:
    """Scores of questions asked from a page, without and with the page preference."""
    urls = {(book, source): path for path, (book, source) in pages.pages.items()}
    results = {}
    for label, preferring in (("without", False), ("with", True)):
        ranks = []
        for case in cases:
            url = urls.get((DEFAULT_BOOK, case["page"]), "")
            prefer: list[Preference] = pages.preferences(url, *weights) if preferring else []
            passages = search.search(case["question"], K, prefer=prefer)
            ranks.append(rank(passages, case["expected"]))
        results[label] = scores(ranks)
    return results


def question_set_cases(questions: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], ...]:
    """The retrieval set asked from its answer's page, and from a page in another folder."""
    own, unrelated = [], []
    sources = sorted({q["source"] for q in questions})
    for n, item in enumerate(questions):
        expected = [{"source": item["source"], "heading": item["heading"]}]
        own.append({"question": item["question"], "page": item["source"], "expected": expected})
        folder = PurePosixPath(item["source"]).parts[0]
        others = [s for s in sources if PurePosixPath(s).parts[0] != folder]
        page = others[(n * 7) % len(others)]
        unrelated.append({"question": item["question"], "page": page, "expected": expected})
    return own, unrelated


def main() -> None:
    """Ingest, run both benchmarks, print tables and a final JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--page-weight", type=float, default=PAGE_WEIGHT)
    parser.add_argument("--chapter-weight", type=float, default=CHAPTER_WEIGHT)
    args = parser.parse_args()
    cases = json.loads(CASES.read_text())
    questions = [q for q in json.loads(QUESTIONS.read_text()) if q["source"]]
    page_cases = [
        {**c, "expected": [{"source": c["page"], "heading": c["heading"]}]}
        for c in cases["page_cases"]
    ]
    own, unrelated = question_set_cases(questions)
    weights = (args.page_weight, args.chapter_weight)
    embedder = LocalMiniLM()
    embedder.load()
    with tempfile.TemporaryDirectory() as tmp:
        index = TextbookIndex(QdrantClient(path=tmp), "textbook", embedder.name, embedder.dimension)
        ingest_tree(index, embedder, args.corpus, BASE_URL)
        search = TextbookSearch(index, embedder, "hybrid")
        retriever = Retriever(search, Guardrail())
        pairs = follow_up_pairs(search, retriever.vocabulary(), cases["pairs"])
        pages = {
            "answer on the page and elsewhere": asked_from_pages(
                search, retriever.pages(), page_cases, weights
            ),
            "retrieval set, from its answer's page": asked_from_pages(
                search, retriever.pages(), own, weights
            ),
            "retrieval set, from an unrelated page": asked_from_pages(
                search, retriever.pages(), unrelated, weights
            ),
        }
    print(f"follow-up pairs: second turn, hybrid search, k={K}\n")
    print("| strategy | pairs | recall@1 | recall@5 | MRR |")
    print("|---|---|---|---|---|")
    for name, by_kind in pairs.items():
        for kind, m in by_kind.items():
            row = f"{m['recall_at_1']} | {m['recall_at_5']} | {m['mrr']}"
            print(f"| {name} | {kind} ({m['n']}) | {row} |")
    print(f"\npage-aware retrieval: page weight {weights[0]}, chapter weight {weights[1]}\n")
    print("| questions | preference | recall@1 | recall@5 | MRR |")
    print("|---|---|---|---|---|")
    for label, by_setting in pages.items():
        for setting, m in by_setting.items():
            row = f"{m['recall_at_1']} | {m['recall_at_5']} | {m['mrr']}"
            print(f"| {label} ({m['n']}) | {setting} | {row} |")
    print(json.dumps({"pairs": pairs, "pages": pages, "page_weights": list(weights)}))


if __name__ == "__main__":
    main()
