"""Answer-quality benchmark for the offline answerer, before and after, in one run.

Ingests the book (as `bench.retrieval` does) into a local Qdrant, retrieves 5 hybrid passages
for every answerable question of `bench/retrieval_questions.json` and answers it with the
current extractive answerer and with the baseline (the answerer at `--baseline-ref`, read from
git). Checks, per answer: it quotes the gold section's key sentence (the section's sentence or
list item most similar to the question under the local MiniLM); no two of its sentences are
more similar than 0.9; it does not open on an unresolved reference ("This ...", "It ...");
how-to questions whose gold section holds code get a code block. Then the "Ask about this"
cases of `bench/answer_selection_cases.json`: the baseline sees the selection alone (as the
worker did), the current answerer the selection and the book around it.

    python -m bench.answer_quality [--index-dir DIR] [--baseline-ref REF] [--show N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from qdrant_client import QdrantClient

from bench import answer_checks as check
from bench.retrieval import DEFAULT_CORPUS, QUESTIONS, is_hit
from bench.support import REPO_ROOT
from common.book.ingest.documents import parse_document
from common.book.retrieval.embeddings import LocalMiniLM
from common.book.retrieval.passages import Passage
from common.book.retrieval.search import TextbookSearch
from common.book.retrieval.store import TextbookIndex
from common.llm.base import AnswerRequest
from common.llm.extractive import ExtractiveAnswerer
from common.llm.extractive.units import passage_units
from workers.chat_runner import selection_passages
from workers.indexing import ingest_tree

SELECTION_CASES = Path(__file__).with_name("answer_selection_cases.json")
BASELINE_REF = "2e8af04"  # main before issue 18: the answerer the issue describes
Answer = Callable[[AnswerRequest], str]


def baseline_answerer(ref: str) -> Answer:
    """The extractive answerer as it was at a git commit, loaded from its source."""
    source = subprocess.run(
        ["git", "show", f"{ref}:common/llm/extractive.py"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    module = types.ModuleType("bench_baseline_extractive")
    sys.modules[module.__name__] = module
    exec(compile(source, f"{ref}:common/llm/extractive.py", "exec"), module.__dict__)
    answerer = module.ExtractiveAnswerer()
    return lambda request: str(answerer.generate(request, lambda _d: None).text)


def current_answerer() -> Answer:
    """The answerer in this checkout."""
    answerer = ExtractiveAnswerer()
    return lambda request: answerer.generate(request, lambda _d: None).text


def gold_units(corpus: Path, item: dict[str, Any]) -> tuple[list[str], bool]:
    """The gold section's sentences and list items, and whether it holds a code block."""
    document = parse_document(corpus / item["source"], corpus)
    units = [
        u
        for section in document.sections
        if item["heading"] in section.heading_path
        for u in passage_units(section.text)
    ]
    prose = [
        u.text for u in units if u.kind != "code" and len(u.text.split()) >= 4 and not u.is_question
    ]
    return prose, any(u.kind == "code" for u in units)


def score_book(
    items: Sequence[dict[str, Any]], answer: Answer, embed: check.Embed
) -> dict[str, Any]:
    """The checks over the in-book questions for one answerer."""
    rows: list[dict[str, Any]] = []
    for item in items:
        text = answer(AnswerRequest(item["question"], item["passages"]))
        rows.append(
            {
                "text": text,
                "answered": not check.is_refusal(text),
                "key": item["key"] is not None and check.contains(text, item["key"]),
                "dup": check.max_pair_similarity(text, embed) > check.DUPLICATE_BOUND,
                "unresolved": check.opens_unresolved(text),
                "code": check.has_code(text),
                "words": len(check.normalize(text).split()),
            }
        )
    n = len(rows)
    retrieved = [r for r, i in zip(rows, items, strict=True) if i["gold_retrieved"]]
    howto = [r for r, i in zip(rows, items, strict=True) if i["wants_code"]]
    return {
        "answered": round(sum(r["answered"] for r in rows) / n, 3),
        "key_sentence": round(sum(r["key"] for r in rows) / n, 3),
        "key_sentence_gold_retrieved": round(
            sum(r["key"] for r in retrieved) / max(1, len(retrieved)), 3
        ),
        "near_duplicates": sum(r["dup"] for r in rows),
        "opens_unresolved": sum(r["unresolved"] for r in rows),
        "howto_with_code": f"{sum(r['code'] for r in howto)}/{len(howto)}",
        "mean_words": round(sum(r["words"] for r in rows) / n, 1),
        "rows": rows,
    }


def score_selection(
    cases: Sequence[dict[str, Any]], answer: Answer, with_context: bool
) -> dict[str, Any]:
    """The "Ask about this" checks for one answerer."""
    rows = []
    for case in cases:
        around = case["around"] if with_context else []
        passages = selection_passages(case["selection"], None, around)
        request = AnswerRequest(case["question"], passages, from_selection=True)
        text = answer(request)
        ok = {
            "answered": not check.is_refusal(text),
            "quotes_selection": 1 in check.cited(text),
            "expected": check.contains(text, case["expect"]),
            "shape": _shape_ok(case, text),
        }
        rows.append({"id": case["id"], "text": text, **ok, "passed": all(ok.values())})
    n = len(rows)
    summary = {k: round(sum(r[k] for r in rows) / n, 3) for k in ("answered", "expected", "shape")}
    return {**summary, "passed": f"{sum(r['passed'] for r in rows)}/{n}", "rows": rows}


def _shape_ok(case: dict[str, Any], text: str) -> bool:
    """The check particular to the prompt's kind."""
    words = len(check.normalize(text).split())
    if case["kind"] == "summarize":
        return words <= len(check.normalize(case["selection"]).split())
    if case["kind"] == "explain":
        return any(n > 1 for n in check.cited(text))  # adds what the book says around it
    if case["kind"] == "about":
        return check.contains(text, case["heading"])  # names the section
    return check.contains(text, case["term"])


def prepare(search: TextbookSearch, corpus: Path, embed: check.Embed) -> list[dict[str, Any]]:
    """Every answerable question with its passages, key sentence and whether it wants code."""
    items = []
    for item in json.loads(QUESTIONS.read_text()):
        if not item["source"]:
            continue
        passages: list[Passage] = search.search(item["question"], k=5, mode="hybrid")
        prose, has_code = gold_units(corpus, item)
        items.append(
            {
                **item,
                "passages": passages,
                "gold_retrieved": any(is_hit(p, item) for p in passages),
                "key": check.key_sentence(item["question"], prose, embed),
                "wants_code": has_code and bool(check.HOWTO.search(item["question"])),
            }
        )
    return items


def main() -> None:
    """Ingest, answer with both answerers, print the tables and a final JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--index-dir", type=Path, help="keep the local index here, reuse it")
    parser.add_argument("--baseline-ref", default=BASELINE_REF)
    parser.add_argument("--show", type=int, default=0, help="print the first N answers")
    args = parser.parse_args()
    embedder = LocalMiniLM()
    embedder.load()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.index_dir or Path(tmp)
        index = TextbookIndex(QdrantClient(path=str(path)), "textbook", embedder.name, 384)
        ingest_tree(index, embedder, args.corpus)
        search = TextbookSearch(index, embedder, "hybrid")
        items = prepare(search, args.corpus, embedder.embed_documents)
        cases = json.loads(SELECTION_CASES.read_text())
        for n, case in enumerate(cases, start=1):
            case["id"] = n
            case["around"] = search.search(case["selection"], k=4, mode="hybrid")
    answerers = {"before": baseline_answerer(args.baseline_ref), "after": current_answerer()}
    book = {name: score_book(items, a, embedder.embed_documents) for name, a in answerers.items()}
    chosen = {name: score_selection(cases, a, name == "after") for name, a in answerers.items()}
    print_report(items, cases, book, chosen, args.show)


def print_report(
    items: list[dict[str, Any]],
    cases: list[dict[str, Any]],
    book: dict[str, dict[str, Any]],
    chosen: dict[str, dict[str, Any]],
    show: int,
) -> None:
    """The answers asked for, both tables and the JSON line."""
    for i, item in enumerate(items[:show]):
        print(f"Q: {item['question']}\nkey: {item['key']}")
        for name in book:
            print(f"{name}: {book[name]['rows'][i]['text']}\n")
    wants = sum(i["wants_code"] for i in items)
    print(f"in-book questions: {len(items)} ({wants} how-to with code in the gold section)\n")
    print(
        "| answerer | answered | key sentence | key sentence, gold retrieved | "
        "near-duplicate pairs | opens unresolved | how-to with code | mean words |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, m in book.items():
        print(
            f"| {name} | {m['answered']} | {m['key_sentence']} | "
            f"{m['key_sentence_gold_retrieved']} | {m['near_duplicates']} | "
            f"{m['opens_unresolved']} | {m['howto_with_code']} | {m['mean_words']} |"
        )
    print(f"\nselection cases: {len(cases)}\n")
    print("| answerer | answered | expected content | prompt-specific check | all checks |")
    print("|---|---|---|---|---|")
    for name, m in chosen.items():
        print(f"| {name} | {m['answered']} | {m['expected']} | {m['shape']} | {m['passed']} |")
    strip = ("rows",)
    print(
        json.dumps(
            {
                "book": {
                    n: {k: v for k, v in m.items() if k not in strip} for n, m in book.items()
                },
                "selection": {
                    n: {k: v for k, v in m.items() if k not in strip} for n, m in chosen.items()
                },
            }
        )
    )


if __name__ == "__main__":
    main()
