"""The answer cache's similarity bound: false hits and true hits on hand-written question pairs.

`bench/answer_cache_pairs.json` holds near misses that must never share an answer ("What is a
node?" / "What is a node handle?", ROS 1 / ROS 2, negations, opposites, reversed relations) and
paraphrases that should. Each pair is embedded with the worker's MiniLM; for each bound the
table counts the pairs the cache would serve, by similarity alone and with the vetoes of
common/jobs/question_match.py. The pick is the lowest bound with no false hit plus a margin:
the set is the one the bound was calibrated on, so its zero is in-sample.

    python -m bench.answer_cache [--margin 0.02] [--json]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from common.book.retrieval.embeddings import LocalMiniLM
from common.jobs.question_match import veto

PAIRS = Path(__file__).with_name("answer_cache_pairs.json")
BOUNDS = [round(0.80 + 0.01 * n, 2) for n in range(20)]


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    similarity: float
    veto: str | None


def score(pairs: list[list[str]], embedder: LocalMiniLM) -> list[Pair]:
    """Each pair's cosine similarity and the veto that tells it apart, if any."""
    texts = sorted({text for pair in pairs for text in pair})
    vectors = dict(zip(texts, embedder.embed_documents(texts), strict=True))
    scored = []
    for a, b in pairs:
        cosine = sum(x * y for x, y in zip(vectors[a], vectors[b], strict=True))
        scored.append(Pair(a, b, round(cosine, 4), veto(a, b)))
    return scored


def hits(pairs: list[Pair], bound: float, vetoes: bool = True) -> int:
    """Pairs the cache would answer with each other's answer at this bound."""
    return sum(1 for p in pairs if p.similarity >= bound and (p.veto is None or not vetoes))


def curve(different: list[Pair], same: list[Pair]) -> list[dict[str, float | int]]:
    """The trade-off: per bound, false hits (alone / with vetoes) and true hits."""
    return [
        {
            "bound": bound,
            "false_hits_similarity_only": hits(different, bound, vetoes=False),
            "false_hits": hits(different, bound),
            "true_hits": hits(same, bound),
            "true_hit_rate": round(hits(same, bound) / len(same), 3),
        }
        for bound in BOUNDS
    ]


def pick(rows: list[dict[str, float | int]], margin: float) -> float:
    """The lowest bound without a false hit (every higher one has none too), plus `margin`."""
    safe = [row["bound"] for row in rows if row["false_hits"] == 0]
    lowest = min(
        (b for b in safe if all(r["false_hits"] == 0 for r in rows if r["bound"] >= b)),
        default=1.0,
    )
    return round(min(1.0, float(lowest) + margin), 2)


def main() -> None:
    """Print the trade-off curve as a Markdown table and the recommended bound."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--margin", type=float, default=0.02)
    parser.add_argument("--json", action="store_true", help="one JSON line instead of tables")
    args = parser.parse_args()
    data = json.loads(PAIRS.read_text())
    embedder = LocalMiniLM()
    different, same = score(data["different"], embedder), score(data["same"], embedder)
    rows = curve(different, same)
    chosen = pick(rows, args.margin)
    if args.json:
        print(json.dumps({"curve": rows, "pick": chosen}))
        return
    print(f"{len(different)} near-miss pairs, {len(same)} paraphrase pairs ({PAIRS.name})\n")
    print("| bound | false hits, similarity only | false hits, with vetoes | true hits |")
    print("| ----- | ---: | ---: | ---: |")
    for row in rows:
        true = f"{row['true_hits']}/{len(same)} ({row['true_hit_rate']:.0%})"
        print(
            f"| {row['bound']:.2f} | {row['false_hits_similarity_only']} | "
            f"{row['false_hits']} | {true} |"
        )
    print("\nNearest near misses (similarity, veto):")
    for pair in sorted(different, key=lambda p: -p.similarity)[:12]:
        print(f"  {pair.similarity:.3f}  {pair.veto or '-':9} {pair.a!r} / {pair.b!r}")
    print("\nParaphrases the cache misses at the pick:")
    for pair in sorted(same, key=lambda p: p.similarity):
        if pair.similarity < chosen or pair.veto is not None:
            print(f"  {pair.similarity:.3f}  {pair.veto or '-':9} {pair.a!r} / {pair.b!r}")
    print(f"\npick: ANSWER_CACHE_MIN_SIMILARITY={chosen} (lowest bound with 0 false hits "
          f"+ {args.margin} margin; in-sample)")  # fmt: skip


if __name__ == "__main__":
    main()
