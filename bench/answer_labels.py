"""Answer labels (common/jobs/answer_labels.py) measured on the benchmark's question sets.

Ingests the textbook with the offline embedder, retrieves every question of
`bench/retrieval_questions.json` (answerable and unanswerable) and of the labelled off-topic set
`bench/off_topic_questions.json` once, as the worker does, and labels each from its coverage.
Without a model the answer is taken to cite what it was given (the offline answerer always
cites), so the labels here are those the guardrail's evidence alone decides.

    python -m bench.answer_labels [--corpus PATH] [--record bench/answer_label_coverages.json]

`--record` writes each question's coverage, which tests/bench/test_answer_labels.py labels
without an index.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from qdrant_client import QdrantClient

from bench.retrieval import DEFAULT_CORPUS, QUESTIONS
from common.book.retrieval.embeddings import LocalMiniLM
from common.book.retrieval.guardrail import Coverage, Guardrail
from common.book.retrieval.retriever import Retriever
from common.book.retrieval.search import TextbookSearch
from common.book.retrieval.store import TextbookIndex
from common.jobs.answer_labels import LabelRules, label_answer
from workers.indexing import ingest_tree

OFF_TOPIC = Path(__file__).with_name("off_topic_questions.json")
RECORDED = Path(__file__).with_name("answer_label_coverages.json")
KINDS = ("answerable", "unanswerable", "off_topic")


def question_sets() -> list[tuple[str, str]]:
    """(kind, question) for every benchmark question."""
    questions = json.loads(QUESTIONS.read_text())
    rows = [("answerable" if q["source"] else "unanswerable", q["question"]) for q in questions]
    return rows + [("off_topic", q) for q in json.loads(OFF_TOPIC.read_text())]


def record_coverages(corpus: Path, k: int = 5) -> list[dict[str, Any]]:
    """Each question's kind and coverage, from real retrieval over the ingested book."""
    embedder = LocalMiniLM()
    with tempfile.TemporaryDirectory() as tmp:
        index = TextbookIndex(QdrantClient(path=tmp), "textbook", embedder.name, embedder.dimension)
        ingest_tree(index, embedder, corpus)
        retriever = Retriever(TextbookSearch(index, embedder), Guardrail())
        rows = []
        for kind, question in question_sets():
            coverage = retriever.retrieve(question, k).coverage
            rows.append(
                {
                    "kind": kind,
                    "question": question,
                    "covered": coverage.covered,
                    "top_similarity": round(coverage.top_similarity, 4),
                    "missing_terms": list(coverage.missing_terms),
                    "missing_fraction": round(coverage.missing_fraction, 4),
                }
            )
    return rows


def coverage_of(row: dict[str, Any]) -> Coverage:
    """A recorded row's coverage."""
    return Coverage(
        row["covered"], row["top_similarity"], tuple(row["missing_terms"]), row["missing_fraction"]
    )


def label_rates(rows: list[dict[str, Any]], rules: LabelRules | None = None) -> dict[str, Any]:
    """Per question set: how many questions got each label."""
    counts: dict[str, Counter[str]] = {kind: Counter() for kind in KINDS}
    for row in rows:
        label = label_answer(coverage_of(row), "an answer citing [1]", 1, rules or LabelRules())
        counts[row["kind"]][label.value] += 1
    return {kind: dict(sorted(c.items())) | {"total": c.total()} for kind, c in counts.items()}


def main() -> None:
    """Retrieve every question, print the labels per set and a final JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--record", type=Path, help="write the coverages here (JSON)")
    args = parser.parse_args()
    rows = record_coverages(args.corpus)
    if args.record:
        args.record.write_text(json.dumps(rows, indent=1) + "\n")
    rates = label_rates(rows)
    print("| set | answered | uncertain | refused | off_topic | total |")
    print("|---|---|---|---|---|---|")
    for kind, got in rates.items():
        cells = " | ".join(str(got.get(label, 0)) for label in _LABELS)
        print(f"| {kind} | {cells} | {got['total']} |")
    print(json.dumps(rates))


_LABELS = ("answered", "uncertain", "refused", "off_topic")

if __name__ == "__main__":
    main()
