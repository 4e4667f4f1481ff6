"""Rate-limit benchmark: bookchat's LLM layer against what users write instead.

Every strategy runs in the same run, side by side, on the same offered load: real Celery
worker processes answer chat jobs through the official SDK against its own simulator, which
enforces the account's RPM and TPM like the provider and logs every request as ground truth.

    python -m bench.ratelimit                  # ~5 minutes
    python -m bench.ratelimit --minutes 6      # longer load phase
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from bench.ratelimit_run import StrategyRun, summarize
from bench.ratelimit_worker import STRATEGIES
from cli.embedded_redis import ensure_embedded_redis, stop_embedded_redis

KEYS = (
    "goodput_pct",
    "rate_429_pct",
    "failed_jobs",
    "unfinished_jobs",
    "p50_latency_s",
    "p95_latency_s",
    "sleeping_slot_pct",
    "completed_jobs",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=2.5, help="load phase length")
    parser.add_argument("--drain-minutes", type=float, default=2.0, help="cap on the drain phase")
    parser.add_argument("--rpm", type=int, default=600)
    parser.add_argument("--tpm", type=int, default=150_000)
    parser.add_argument("--load-factor", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=2, help="worker processes per strategy")
    parser.add_argument("--concurrency", type=int, default=8, help="threads per worker")
    parser.add_argument("--max-tokens", type=int, default=500)
    parser.add_argument("--prompt-chars", type=int, default=2000)
    parser.add_argument("--ttft", type=float, default=0.3)
    parser.add_argument("--per-token", type=float, default=0.01)
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument(
        "--free-rejections",
        dest="charge_rejected",
        action="store_false",
        help="do not count 429s against RPM (the provider does count them)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run every strategy concurrently, then print a table and a final JSON line."""
    args = parse_args(argv)
    strategies = args.strategies.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        redis_base = ensure_embedded_redis(root).rsplit("/", 1)[0]
        runs = [
            StrategyRun(name, root / name, f"{redis_base}/{n + 1}", args)
            for n, name in enumerate(strategies)
        ]
        try:
            for run in runs:
                run.start()
            print(
                f"binding limit: {runs[0].binding_description()}; offered "
                f"{runs[0].offered_per_minute:.0f} jobs/min for {args.minutes} min",
                file=sys.stderr,
            )
            threads = [threading.Thread(target=run.drive) for run in runs]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            results = {run.name: summarize(run) for run in runs}
        finally:
            for run in runs:
                run.stop()
            stop_embedded_redis(root)
    print_table(results)
    ours = results.get("limiter", {})
    line: dict[str, Any] = {key: ours.get(key) for key in KEYS}
    line["baselines"] = {
        name: {key: r[key] for key in KEYS} for name, r in results.items() if name != "limiter"
    }
    line["config"] = {
        k: getattr(args, k)
        for k in ("minutes", "rpm", "tpm", "load_factor", "workers", "concurrency", "max_tokens")
    }
    print(json.dumps(line))


def print_table(results: dict[str, dict[str, Any]]) -> None:
    """A Markdown table, one row per strategy."""
    print("| strategy | " + " | ".join(KEYS) + " |")
    print("|---" * (len(KEYS) + 1) + "|")
    for name, result in results.items():
        print(f"| {name} | " + " | ".join(str(result[key]) for key in KEYS) + " |")


if __name__ == "__main__":
    main()
