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
import re
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

CORPUS = Path("/work/shared/corpus/physical-ai-textbook")
BASE_URL = "https://book.example/docs/"
ANCHOR = datetime(2026, 12, 4, tzinfo=UTC)  # the window is the 7 days before, fixed for repeats
WINDOW = timedelta(days=7)
TEMPLATES = [
    "What is {t}?", "Can you explain {t}?", "how does {t} work", "{t} explained simply",
    "Give me an example of {t}", "What should I know about {t}?", "Why does {t} matter?",
    "I don't understand {t}", "Summarize {t} for me", "What are the key ideas of {t}?",
]  # fmt: skip
NOT_IN_BOOK = [
    "calibrating a lidar", "tuning a PID controller on an STM32", "soldering motor drivers",
    "ROS 1 to ROS 2 bridge setup", "training a diffusion policy", "battery management systems",
    "CAN bus wiring for actuators", "buying a Unitree G1", "hydraulic actuators",
    "Kubernetes for robot fleets", "MoveIt 2 collision objects", "quadruped gait tuning",
]  # fmt: skip
OFF_TOPIC = [
    "What's the weather tomorrow?", "How do I cook pasta?", "Who won the football match?",
    "Write me a poem about cats", "What is the capital of Peru?", "Best pizza in town?",
]  # fmt: skip


def corpus_pages() -> list[tuple[str, str, list[str]]]:
    """(url, title, headings) of every page of the textbook."""
    pages = []
    for path in sorted(CORPUS.rglob("*.md")):
        text = path.read_text(errors="replace")
        heads = [
            re.sub(r"^[\d.]+\s*", "", h).strip() for h in re.findall(r"^#{1,3} (.+)$", text, re.M)
        ]
        heads = [h for h in heads if 3 <= len(h) <= 80]
        rel = path.relative_to(CORPUS).with_suffix("").as_posix().removesuffix("/index")
        title = heads[0] if heads else rel
        if heads:
            pages.append((BASE_URL + rel, title, heads))
    return pages


def synthetic_jobs(
    count: int, rng: random.Random, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """Chat jobs with question, label, citations, sources and creation time in [start, end)."""
    pages = corpus_pages()
    topics = [(url, title, head) for url, title, heads in pages for head in heads]
    weights = [1 / (rank + 1) ** 1.1 for rank in range(len(topics))]
    rng.shuffle(topics)
    span = (end - start).total_seconds()
    jobs = []
    for _ in range(count):
        roll = rng.random()
        cited: list[dict[str, Any]]
        sources: list[dict[str, Any]]
        if roll < 0.05:
            message, label, cited, sources = rng.choice(OFF_TOPIC), "off_topic", [], []
        elif roll < 0.20:
            subject = rng.choice(NOT_IN_BOOK)
            message = rng.choice(TEMPLATES).format(t=subject)
            label = "refused" if rng.random() < 0.8 else "uncertain"
            url, title, head = rng.choice(topics)
            cited, sources = [], [_cite(url, title, head, 0.2)]
        else:
            url, title, head = rng.choices(topics, weights)[0]
            message = rng.choice(TEMPLATES).format(t=head)
            label = rng.choices(["answered", "uncertain", "refused"], [0.95, 0.03, 0.02])[0]
            cited = [_cite(url, title, head, 0.8)] if label != "refused" else []
            other = rng.choice(topics)
            sources = [_cite(other[0], other[1], other[2], 0.3)]
        if rng.random() < 0.1:
            message = message.lower()
        at = start + timedelta(seconds=rng.random() * span)
        jobs.append(
            {
                "message": message,
                "label": label,
                "citations": cited,
                "sources": sources,
                "created_at": at,
            }
        )
    return jobs


def _cite(url: str, title: str, heading: str, score: float) -> dict[str, Any]:
    return {
        "n": 1,
        "title": title,
        "heading": heading,
        "url": url,
        "source": url.removeprefix(BASE_URL) + ".md",
        "snippet": "",
        "score": score,
    }


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

    from common.admin.insights.pages import Page
    from common.admin.insights.runs import INSIGHTS, RunTools, run_insights
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
