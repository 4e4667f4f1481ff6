"""Synthetic insights data: questions from the physical-AI textbook's headings, labelled and cited.

Questions put the headings in paraphrase templates, popular topics asked far more often than
others (Zipf); some ask about subjects the book lacks, some are off topic.
"""

from __future__ import annotations

import random
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

CORPUS = Path("/work/shared/corpus/physical-ai-textbook")
BASE_URL = "https://book.example/docs/"
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
