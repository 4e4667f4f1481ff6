"""A small, exact insights data set: questions with labels, citations and ratings on known days."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.admin.insights.pages import Page
from common.platform.models import AnswerFeedback, ChatJob, User

SINCE = datetime(2026, 12, 1, tzinfo=UTC)
UNTIL = datetime(2026, 12, 4, tzinfo=UTC)
BASE = "https://book.example/docs/"
CATALOGUE = [
    Page(BASE + name.removesuffix(".md"), title, name)
    for name, title in [
        ("ros2/nodes.md", "Nodes"),
        ("ros2/topics.md", "Topics"),
        ("sensors/lidar.md", "Lidar"),
        ("urdf.md", "URDF"),
        ("intro.md", "Introduction"),
    ]
]
NODES, TOPICS, LIDAR, URDF, INTRO = CATALOGUE


def cite(*pages: Page) -> list[dict[str, Any]]:
    """Citations as the worker stores them."""
    return [
        {"n": n, "title": p.title, "heading": p.title, "url": p.url, "source": p.source,
         "snippet": "...", "score": 0.5}
        for n, p in enumerate(pages, start=1)
    ]  # fmt: skip


def seed(session: Session) -> dict[str, uuid.UUID]:
    """The data set; the ids of its questions by a short name."""
    readers = [User(email=f"reader{i}-{uuid.uuid4().hex[:6]}@example.com") for i in range(3)]
    session.add_all(readers)
    session.flush()
    r0, r1, r2 = readers
    jobs = {
        "lidar-before": ("How do I calibrate a lidar?", datetime(2026, 11, 30, 9, tzinfo=UTC),
                         "refused", []),
        "lidar": ("How do I calibrate a lidar?", datetime(2026, 12, 1, 8, tzinfo=UTC),
                  "refused", []),
        "lidar-steps": ("What is the procedure for lidar calibration?",
                        datetime(2026, 12, 1, 9, tzinfo=UTC), "refused", []),
        "node": ("What is a ROS 2 node?", datetime(2026, 12, 1, 10, tzinfo=UTC), "answered",
                 cite(NODES)),
        "weather": ("What will the weather be like tomorrow?",
                    datetime(2026, 12, 1, 23, 59, tzinfo=UTC), "off_topic", []),
        "lidar-unsure": ("calibrating a lidar sensor", datetime(2026, 12, 2, 12, tzinfo=UTC),
                         "uncertain", cite(LIDAR)),
        "node-explain": ("Can you explain what a node is in ROS 2?",
                         datetime(2026, 12, 2, 13, tzinfo=UTC), "answered",
                         cite(NODES, NODES, TOPICS)),
        "node-again": ("What is a ROS 2 node?", datetime(2026, 12, 3, 7, tzinfo=UTC), "answered",
                       cite(NODES)),
        "later": ("What is URDF?", datetime(2026, 12, 4, 1, tzinfo=UTC), "answered", cite(URDF)),
    }  # fmt: skip
    ids: dict[str, uuid.UUID] = {}
    for name, (message, at, label, citations) in jobs.items():
        job = ChatJob(
            user_id=r0.id, message=message, request_hash=name, created_at=at, label=label,
            status="completed", citations=citations, answer="...",
        )  # fmt: skip
        session.add(job)
        session.flush()
        ids[name] = job.id
    # A chapter rewrite in the window is no reader's question.
    session.add(
        ChatJob(user_id=r0.id, task="personalize", message="# chapter", request_hash="ch",
                created_at=datetime(2026, 12, 2, tzinfo=UTC), status="completed")
    )  # fmt: skip
    ratings = [
        ("node", r1, "up"),
        ("lidar-steps", r1, "down"),
        ("node-explain", r2, "down"),
        ("node-again", r1, "up"),
        ("node-again", r2, "up"),
        ("lidar-before", r1, "down"),
    ]
    for name, reader, rating in ratings:
        session.add(AnswerFeedback(job_id=ids[name], user_id=reader.id, rating=rating))
    session.flush()
    return ids


def seed_once(session: Session) -> None:
    """Seed a shared database unless an earlier test module already did."""
    if session.scalar(select(ChatJob.id).where(ChatJob.request_hash == "lidar-before")) is None:
        seed(session)
