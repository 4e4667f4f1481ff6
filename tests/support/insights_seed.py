"""A small history of questions, labels, citations and ratings for the insights' page tests.

Rows go straight into the database (as finished chat jobs of one seeded reader), spread over
the last few days, so a real insights run on a real worker has something to group and count.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from common.accounts.users import create_user
from common.platform.db import session_scope
from common.platform.models import (
    AnswerFeedback,
    AnswerLabel,
    ChatJob,
    JobStatus,
    ReprocessJob,
    Role,
    utcnow,
)

# Citations name a section of a page, as the index's chunks do.
NODES = {
    "url": "/ros2/nodes-and-topics#what-is-a-node",
    "title": "Nodes, Topics, Services, and Actions",
    "source": "01-ros2/nodes-and-topics.md",
}
TOPICS = {**NODES, "url": "/ros2/nodes-and-topics#topics-publishing-and-subscribing"}
GAZEBO = {"url": "/simulation/gazebo-and-digital-twins#what-is-a-digital-twin",
          "title": "Gazebo, Isaac Sim, and Digital Twins",
          "source": "02-simulation/gazebo-and-digital-twins.mdx"}  # fmt: skip
# (question, label, cited pages, rating): the lidar questions are the gap the page must show.
QUESTIONS: tuple[tuple[str, AnswerLabel, tuple[dict[str, str], ...], str | None], ...] = (
    ("What is a ROS 2 node?", AnswerLabel.ANSWERED, (NODES,), "up"),
    ("What is a node in ROS 2?", AnswerLabel.ANSWERED, (NODES,), "up"),
    ("How do topics differ from services?", AnswerLabel.ANSWERED, (TOPICS,), "down"),
    ("What is a digital twin?", AnswerLabel.ANSWERED, (GAZEBO,), None),
    ("How do I calibrate a lidar?", AnswerLabel.REFUSED, (), None),
    ("How do I calibrate my lidar sensor?", AnswerLabel.REFUSED, (), "down"),
    ("How can I calibrate a LiDAR?", AnswerLabel.REFUSED, (), None),
    ("Lidar calibration steps?", AnswerLabel.UNCERTAIN, (GAZEBO,), "down"),
    ("What is the best pizza in Rome?", AnswerLabel.OFF_TOPIC, (), None),
)  # fmt: skip
DAYS = 4


@dataclass(frozen=True)
class Seeded:
    """What was seeded: how many questions, and of them refused and rated down."""

    questions: int
    refused: int
    down: int


def seed_questions(sessions: sessionmaker[Session], copies: int = 2) -> Seeded:
    """Each question `copies` times, spread over the last DAYS days (today included)."""
    now = utcnow()
    with session_scope(sessions) as session:
        reader = create_user(
            session, f"seeded-{uuid.uuid4().hex[:8]}@example.com", "pw-" * 4, "Seeded", Role.USER
        )
        session.flush()
        n = 0
        for copy in range(copies):
            for question, label, pages, rating in QUESTIONS:
                at = now - timedelta(days=n % DAYS, minutes=copy + 1)
                n += 1
                job = ChatJob(
                    user_id=reader.id,
                    message=question,
                    request_hash=hashlib.sha256(f"{question}{copy}".encode()).hexdigest(),
                    status=JobStatus.COMPLETED.value,
                    answer="…",
                    citations=[{**page, "heading": "", "n": i + 1} for i, page in enumerate(pages)],
                    label=label.value,
                    created_at=at,
                    completed_at=at,
                )
                session.add(job)
                session.flush()
                if rating is not None:
                    session.add(AnswerFeedback(job_id=job.id, user_id=reader.id, rating=rating))
    refused = sum(1 for q in QUESTIONS if q[1] is AnswerLabel.REFUSED) * copies
    down = sum(1 for q in QUESTIONS if q[3] == "down") * copies
    return Seeded(len(QUESTIONS) * copies, refused, down)


def wait_for_run(sessions: sessionmaker[Session], timeout: float = 120) -> ReprocessJob:
    """Wait until the newest insights run has finished; its job."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(sessions) as session:
            job = session.scalar(
                select(ReprocessJob)
                .where(ReprocessJob.operation == "insights")
                .order_by(ReprocessJob.created_at.desc())
                .limit(1)
            )
            if job is not None and job.status not in ("queued", "in_progress"):
                session.expunge(job)
                return job
        time.sleep(0.2)
    raise AssertionError("the insights run did not finish")
