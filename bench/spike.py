"""Demo-day spike: a thousand readers ask at once; the API stays fast and no job is lost.

Real processes: gunicorn (bookchat's own server configuration), a Celery worker, a private
Redis, the database, and the OpenAI-compatible simulator answering in ~1-3 s under a rate
limit. For each database named (the embedded SQLite default, PostgreSQL), on a fresh empty
database and a fresh simulator, side by side:

- **floor:** the same burst against `/healthz`, a trivial view on the same server;
- **bookchat:** 1,000 submissions from 100 concurrent clients, then every job polled to its
  end (submit latency, errors, lost jobs, time to drain, end-to-end latency, peak RSS);
- **open loop:** submits offered at fixed rates (50, 100, 200, 400 a second), p99 at each;

then once, unless `--no-baseline`: the same burst against the original design
(`bench.sync_baseline`, the model called inside the request, gunicorn with 32 threads).
With both databases, the table ends with SQLite's p99 over PostgreSQL's.

    python -m bench.spike [--databases sqlite postgresql] [--postgres-url URL]
    python -m bench.spike --jobs 200 --rates 50 100 --no-baseline   # a quick check
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.cpu_budget import CpuMeter, budget_ms, per_submit_ms
from bench.openai_sim import SimConfig
from bench.sim_process import simulator_process
from bench.spike_phases import burst, drain, open_loop, peak_rss_mb, run_baseline, summary
from bench.support import REPO_ROOT, BenchStack, percentile, spike_env

DATABASES = ("sqlite", "postgresql")


@contextmanager
def fresh_database(kind: str, postgres_url: str) -> Iterator[str]:
    """An empty database for one phase: "" (SQLite in the stack's folder) or a new PostgreSQL one.

    `postgres_url` is a server login allowed to create databases; the new one is dropped after.
    """
    if kind == "sqlite":
        yield ""  # the embedded default: var/bookchat.db in the stack's fresh folder
        return
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"bench_spike_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_database(args: argparse.Namespace, database_url: str) -> dict[str, Any]:
    """Floor, burst, drain and open loop against one stack on one (empty) database."""
    config = SimConfig(ttft_s=args.ttft, per_token_s=args.per_token, rpm=args.rpm, tpm=args.tpm)
    with simulator_process(config) as (sim_url, sim_pid), tempfile.TemporaryDirectory() as tmp:
        env = spike_env(sim_url, args.rpm, args.tpm, args.jobs)
        if database_url:
            env["DATABASE_URL"] = database_url
        # Local-mode Qdrant admits one process per folder: one worker process, many threads.
        stack = BenchStack.start(Path(tmp), env, workers=1, concurrency=args.concurrency)
        try:
            stack.ingest(REPO_ROOT / "examples" / "textbook")
            base = stack.base_url
            signup = {"email": "spike@example.com", "password": "spike-password"}
            token = httpx.post(f"{base}/v1/auth/signup", json=signup).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            floor = asyncio.run(burst(base, "/healthz", args.jobs, args.clients, {}, get=True))
            started = time.perf_counter()
            results = asyncio.run(burst(base, "/v1/chat/jobs", args.jobs, args.clients, headers))
            ids = [data["id"] for _, status, data in results if status == 202]
            outcome = drain(base, headers, ids, timeout=args.drain_timeout)
            drain_s = round(time.perf_counter() - started, 1)
            ours = {**summary(results, 202), **outcome, "drain_s": drain_s}
            # The provider starts with a minute of credit; the rest comes at the per-minute rate.
            ours["drain_floor_s"] = round(max(args.jobs - args.rpm, 0) / (args.rpm / 60), 1)
            ours["peak_rss_mb"] = {
                "web": peak_rss_mb(stack.processes[-1].pid),
                "workers": sum(peak_rss_mb(w.pid) for w in stack.workers()),
            }
            loop: dict[str, dict[str, Any]] = {}
            roots = {
                "web": [stack.processes[-1].pid],
                "worker": [w.pid for w in stack.workers()],
                "simulator": [sim_pid],
            }
            for rate in args.rates:
                meter = CpuMeter(roots)
                meter.start()
                latencies, _, errors = asyncio.run(
                    open_loop(base, headers, rate, args.loop_seconds)
                )
                cpu = per_submit_ms(meter.stop(), len(latencies))
                loop[f"{rate:g}"] = {
                    "p50_ms": round(percentile(latencies, 50) * 1000, 1),
                    "p99_ms": round(percentile(latencies, 99) * 1000, 1),
                    "errors": sum(errors.values()),
                    "error_kinds": dict(errors),
                    "cpu_ms_per_submit": cpu,
                    "cpu_budget_ms": budget_ms(rate),
                }
        finally:
            stack.stop()
    return {**ours, "floor": summary(floor, 200), "open_loop": loop}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every phase on every database named, then the baseline once."""
    result: dict[str, Any] = {"databases": {}}
    for kind in args.databases:
        with fresh_database(kind, args.postgres_url) as url:
            result["databases"][kind] = run_database(args, url)
    if set(DATABASES) <= set(result["databases"]):
        result["sqlite_over_postgresql"] = ratios(
            result["databases"]["sqlite"], result["databases"]["postgresql"]
        )
    if args.baseline:
        config = SimConfig(ttft_s=args.ttft, per_token_s=args.per_token, rpm=args.rpm, tpm=args.tpm)
        with simulator_process(config) as (sim_url, _):
            result["baseline"] = run_baseline(sim_url, args.jobs, args.clients)
    return result


def ratios(sqlite: dict[str, Any], postgresql: dict[str, Any]) -> dict[str, float | None]:
    """SQLite's p99 over PostgreSQL's: the burst's submits and each open-loop rate."""

    def ratio(a: float, b: float) -> float | None:
        return round(a / b, 2) if b else None

    out = {"submit_p99": ratio(sqlite["submit_p99_ms"], postgresql["submit_p99_ms"])}
    for rate, row in sqlite["open_loop"].items():
        other = postgresql["open_loop"].get(rate)
        if other:
            out[f"open_loop_{rate}_p99"] = ratio(row["p99_ms"], other["p99_ms"])
    return out


def print_tables(result: dict[str, Any]) -> None:
    """The Markdown tables of a run."""
    print("| server | database | submit p50 ms | submit p99 ms | errors | lost jobs | drain s |")
    print("|---|---|---|---|---|---|---|")
    for kind, row in result["databases"].items():
        print(f"| bookchat | {kind} | {row['submit_p50_ms']} | {row['submit_p99_ms']} | "
              f"{row['errors']} | {row['lost_jobs']} | {row['drain_s']} "
              f"(floor {row['drain_floor_s']}) |")  # fmt: skip
        if row.get("exceptions"):
            print(f"|  | {kind}: client-side errors | {json.dumps(row['exceptions'])} | | | | |")
        floor = row["floor"]
        print(f"| floor (/healthz) | {kind} | {floor['submit_p50_ms']} | "
              f"{floor['submit_p99_ms']} | {floor['errors']} | - | - |")  # fmt: skip
    if "baseline" in result:
        base = result["baseline"]
        print(f"| baseline (model in the request) | - | {base['submit_p50_ms']} | "
              f"{base['submit_p99_ms']} | {base['errors']} | {base['lost_jobs']} | "
              f"{base['drain_s']} |")  # fmt: skip
    print()
    kinds = list(result["databases"])
    print("| offered submits/s | " + " | ".join(f"{k} p99 ms (errors)" for k in kinds) + " |")
    print("|---|" + "---|" * len(kinds))
    rates = result["databases"][kinds[0]]["open_loop"] if kinds else {}
    for rate in rates:
        cells = []
        for kind in kinds:
            row = result["databases"][kind]["open_loop"][rate]
            cells.append(f"{row['p99_ms']} ({row['errors']})")
        print(f"| {rate} | " + " | ".join(cells) + " |")
    print_cpu_budget(result)
    if "sqlite_over_postgresql" in result:
        print()
        print("SQLite p99 / PostgreSQL p99:", json.dumps(result["sqlite_over_postgresql"]))


def print_cpu_budget(result: dict[str, Any]) -> None:
    """Per open-loop rate: CPU ms per submit by process group against what the machine has."""
    groups = ["web", "worker", "postgresql", "redis", "simulator", "load generator", "other"]
    print()
    print("| database | offered/s | budget ms | machine busy ms | "
          + " | ".join(groups) + " |")  # fmt: skip
    print("|---|---|---|---|" + "---|" * len(groups))
    for kind, row in result["databases"].items():
        for rate, figures in row["open_loop"].items():
            cpu = figures["cpu_ms_per_submit"]
            cells = " | ".join(f"{cpu.get(group, 0.0)}" for group in groups)
            print(f"| {kind} | {rate} | {figures['cpu_budget_ms']} | "
                  f"{cpu.get('machine (busy)', 0.0)} | {cells} |")  # fmt: skip


def main() -> None:
    """Print the tables and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=32, help="worker threads")
    parser.add_argument("--rpm", type=int, default=300, help="the simulated account's limit")
    parser.add_argument("--tpm", type=int, default=2_000_000, help="high enough not to bind")
    parser.add_argument("--ttft", type=float, default=1.0)
    parser.add_argument("--per-token", type=float, default=0.03)
    parser.add_argument("--rates", type=float, nargs="*", default=[50, 100, 200, 400])
    parser.add_argument("--loop-seconds", type=float, default=5.0)
    parser.add_argument("--drain-timeout", type=float, default=900)
    parser.add_argument(
        "--databases", nargs="+", choices=DATABASES, default=list(DATABASES),
        help="each on a fresh empty database, in this order",
    )  # fmt: skip
    parser.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL login that may CREATE DATABASE (one is made per run, then dropped)",
    )
    parser.add_argument(
        "--no-baseline", dest="baseline", action="store_false",
        help="skip the slow synchronous baseline (quick runs)",
    )  # fmt: skip
    result = run(parser.parse_args())
    print_tables(result)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
