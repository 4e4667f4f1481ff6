"""Insights at real sizes: 100,000 synthetic chat jobs in SQLite, a cold run and an incremental one.

    python -m bench.insights [--jobs 100000] [--new 1000] [--calibrate]

Questions come from the headings of the physical-AI textbook (/work/shared/corpus) in paraphrase
templates, popular topics asked far more often than others (Zipf), plus questions the book does
not cover and off-topic ones; each has a label, citations of its page and, for some, ratings.
Each phase runs in a fresh process, as a worker runs an insights run (claim, run, commit at
checkpoints), and reports its time and peak memory (max RSS, the embedding model included),
next to a floor measured in the same run: a plain SQL count of the window's questions and the
raw embedding of the distinct question texts alone. Tables first, then one JSON line.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.insights_data import BASE_URL, corpus_pages, synthetic_jobs

ANCHOR = datetime(2026, 12, 4, tzinfo=UTC)  # the window is the 7 days before, fixed for repeats
WINDOW = timedelta(days=7)


def seed(
    database_url: str, count: int, start: datetime, end: datetime, seed_value: int
) -> dict[str, Any]:
    """Insert `count` jobs (and readers, ratings) in chunks; returns timing."""
    from sqlalchemy import insert

    from common.platform.db import make_engine, make_session_factory
    from common.platform.models import AnswerFeedback, ChatJob, User

    rng = random.Random(seed_value)
    sessions = make_session_factory(make_engine(_settings(database_url)))
    began = time.perf_counter()
    with sessions() as session:
        readers = [uuid.uuid4() for _ in range(500)]
        session.execute(
            insert(User), [{"id": r, "email": f"r-{r.hex}@example.com"} for r in readers]
        )
        jobs = synthetic_jobs(count, rng, start, end)
        for offset in range(0, count, 5000):
            rows, ratings = [], []
            for job in jobs[offset : offset + 5000]:
                job_id = uuid.uuid4()
                rows.append(
                    {
                        "id": job_id,
                        "user_id": rng.choice(readers),
                        "message": job["message"],
                        "request_hash": job_id.hex,
                        "status": "completed",
                        "answer": "...",
                        "label": job["label"],
                        "citations": job["citations"],
                        "sources": job["sources"],
                        "created_at": job["created_at"],
                    }
                )
                if rng.random() < 0.12:
                    down = 0.6 if job["label"] in ("refused", "uncertain") else 0.15
                    ratings.append(
                        {
                            "job_id": job_id,
                            "user_id": rng.choice(readers),
                            "rating": "down" if rng.random() < down else "up",
                            "created_at": job["created_at"],
                            "updated_at": job["created_at"],
                        }
                    )
            session.execute(insert(ChatJob), rows)
            if ratings:
                session.execute(insert(AnswerFeedback), ratings)
        session.commit()
    return {"seconds": time.perf_counter() - began, "jobs": count}


def _settings(database_url: str) -> Any:
    from common.platform.settings import Settings

    return Settings(_env_file=None, database_url=database_url, environment="test")  # type: ignore[call-arg]


def run(database_url: str) -> dict[str, Any]:
    """An insights run as a worker does it: queue a row, claim it, run it, commit at checkpoints."""
    from sqlalchemy import func, select

    from common.admin.insights.computing import RunTools, run_insights
    from common.admin.insights.pages import Page
    from common.admin.insights.runs import INSIGHTS
    from common.book.retrieval.embeddings import LocalMiniLM
    from common.jobs.lifecycle import claim_job
    from common.platform.db import make_engine, make_session_factory
    from common.platform.models import (
        InsightsGroup,
        InsightsRun,
        JobKind,
        QuestionVector,
        ReprocessJob,
    )

    sessions = make_session_factory(make_engine(_settings(database_url)))
    embedder = LocalMiniLM()
    embedder.load()
    catalogue = [
        Page(url, title, url.removeprefix(BASE_URL) + ".md") for url, title, _ in corpus_pages()
    ]
    with sessions() as session:
        vectors_before = session.scalar(select(func.count()).select_from(QuestionVector)) or 0
        job = ReprocessJob(operation=INSIGHTS, request_hash="bench")
        session.add(job)
        session.flush()
        session.add(InsightsRun(id=job.id, since=ANCHOR - WINDOW, until=ANCHOR))
        session.commit()
        job_id = job.id
    stages: dict[str, float] = {}
    began = time.perf_counter()
    with sessions() as session:
        row = claim_job(session, JobKind.REPROCESS, job_id, "bench", 3600)
        assert isinstance(row, ReprocessJob)
        attempt = row.attempts
        session.commit()

        def checkpoint() -> None:
            session.commit()
            stage = session.scalar(select(InsightsRun.stage).where(InsightsRun.id == job_id))
            stages.setdefault(str(stage), time.perf_counter() - began)

        tools = RunTools(embedder=embedder, catalogue=lambda: catalogue)
        run_insights(session, row, attempt, tools, lambda: True, checkpoint)
        session.commit()
        seconds = time.perf_counter() - began
        report = session.scalar(select(InsightsRun.report).where(InsightsRun.id == job_id))
        vectors_after = session.scalar(select(func.count()).select_from(QuestionVector)) or 0
        groups = session.scalar(select(func.count()).select_from(InsightsGroup)) or 0
    assert report is not None, "the run did not finish"
    ends = {**stages, "done": seconds}
    order = ["embedding", "grouping", "report", "done"]
    durations = {
        a: round(ends[b] - ends[a], 2)
        for a, b in itertools.pairwise(order)
        if a in ends and b in ends
    }
    return {
        "seconds": seconds,
        "embedded": vectors_after - vectors_before,
        "groups": groups,
        "stages": durations,
        "questions": report["totals"]["questions"],
        "gaps": len(report["gaps"]),
        "top_gap": report["gaps"][0]["representative"] if report["gaps"] else None,
        "top_asked": report["most_asked"][0]["representative"],
    }


def floor(database_url: str, since: datetime) -> dict[str, Any]:
    """The floor: count the window's questions in SQL, and embed their distinct texts alone."""
    from sqlalchemy import func, select

    from common.book.retrieval.embeddings import LocalMiniLM
    from common.platform.db import make_engine, make_session_factory
    from common.platform.models import ChatJob

    sessions = make_session_factory(make_engine(_settings(database_url)))
    began = time.perf_counter()
    with sessions() as session:
        count = session.scalar(
            select(func.count()).select_from(ChatJob).where(ChatJob.created_at >= since)
        )
        counted = time.perf_counter() - began
        texts = list(
            dict.fromkeys(
                " ".join(m.lower().split())
                for m in session.scalars(select(ChatJob.message).where(ChatJob.created_at >= since))
            )
        )
    embedder = LocalMiniLM()
    embedder.load()
    began = time.perf_counter()
    for start in range(0, len(texts), 256):
        embedder.embed_documents(texts[start : start + 256])
    return {
        "sql_count_seconds": counted,
        "questions": count,
        "distinct_texts": len(texts),
        "embed_seconds": time.perf_counter() - began,
    }


def child(phase: str, *args: str) -> dict[str, Any]:
    """Run a phase in a fresh process: its result and its peak memory."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.insights", "--phase", phase, *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"phase {phase} failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _phase(args: argparse.Namespace) -> None:
    start = ANCHOR - 2 * WINDOW
    if args.phase == "seed":
        result = seed(args.db, args.jobs, start, ANCHOR - timedelta(hours=1), 21)
    elif args.phase == "more":
        result = seed(args.db, args.new, ANCHOR - timedelta(hours=1), ANCHOR, 22)
    elif args.phase == "run":
        result = run(args.db)
    elif args.phase == "floor":
        result = floor(args.db, datetime.fromisoformat(args.since))
    else:
        raise SystemExit(f"unknown phase {args.phase}")
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result, default=str))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--new", type=int, default=1_000)
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--since", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        _phase(args)
        return
    with tempfile.TemporaryDirectory() as folder:
        db = f"sqlite:///{folder}/insights.db"
        from common.platform.migrate import upgrade_database

        upgrade_database(_settings(db))
        seeded = child("seed", "--db", db, "--jobs", str(args.jobs))
        cold = child("run", "--db", db)
        cold_floor = child("floor", "--db", db, "--since", (ANCHOR - 2 * WINDOW).isoformat())
        more = child("more", "--db", db, "--new", str(args.new))
        warm = child("run", "--db", db)
        warm_floor = child(
            "floor", "--db", db, "--since", (ANCHOR - timedelta(hours=1)).isoformat()
        )
    rows = [
        ("seed", f"{seeded['jobs']} jobs", seeded["seconds"], seeded["peak_mb"]),
        ("cold run", f"{cold['embedded']} vectors", cold["seconds"], cold["peak_mb"]),
        (
            "  floor: SQL count",
            f"{cold_floor['questions']} questions",
            cold_floor["sql_count_seconds"],
            None,
        ),
        (
            "  floor: embed texts",
            f"{cold_floor['distinct_texts']} distinct",
            cold_floor["embed_seconds"],
            cold_floor["peak_mb"],
        ),
        ("add new jobs", f"{more['jobs']} jobs", more["seconds"], more["peak_mb"]),
        ("incremental run", f"{warm['embedded']} vectors", warm["seconds"], warm["peak_mb"]),
        (
            "  floor: embed new texts",
            f"{warm_floor['distinct_texts']} distinct",
            warm_floor["embed_seconds"],
            warm_floor["peak_mb"],
        ),
    ]
    print(f"{'phase':26} {'size':>18} {'seconds':>9} {'peak MB':>8}")
    for name, size, seconds, peak in rows:
        print(f"{name:26} {size:>18} {seconds:9.1f} {'' if peak is None else f'{peak:8.0f}'}")
    print(f"cold stages (s): {cold['stages']}; incremental stages (s): {warm['stages']}")
    print(f"window questions {cold['questions']}; groups of all questions {cold['groups']}")
    print(f"top gap: {cold['top_gap']!r}; most asked: {cold['top_asked']!r}")
    print(
        json.dumps(
            {
                "bench": "insights",
                "jobs": args.jobs,
                "new": args.new,
                "cold": cold,
                "cold_floor": cold_floor,
                "incremental": warm,
                "incremental_floor": warm_floor,
                "seed": seeded,
            },
            default=str,
        )
    )


if __name__ == "__main__":
    main()
