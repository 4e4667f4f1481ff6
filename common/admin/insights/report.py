"""The insights report: what readers asked, what the book failed to answer, which pages matter.

`compute_report` builds it from the database (the worker calls it at the end of a run, with the
index's pages and, when it has them, a retriever and a model); `stored.current_report` reads
the latest one computed for a window, for the API, the CLI and the admin page.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from common.admin.insights.gaps import (
    Closest,
    Explain,
    Pick,
    coverage_gaps,
    most_asked,
    most_frequent,
)
from common.admin.insights.grouping import Groups, from_bytes
from common.admin.insights.pages import Page, page_tables
from common.admin.insights.questions import Question, load_questions, normalised
from common.admin.insights.stored import InsightsReport
from common.platform.models import ChatJob, QuestionVector, utcnow

LABELS = ("answered", "refused", "uncertain", "off_topic")
CLOSEST_PASSAGES = 3
REPRESENTATIVE_SAMPLE = 300


def totals_of(current: list[Question]) -> dict[str, int]:
    """How many questions, of each label, and how many ratings up and down."""
    labels = Counter(q.label for q in current)
    return {
        "questions": len(current),
        **{label: labels.get(label, 0) for label in LABELS},
        "rated_up": sum(q.up for q in current),
        "rated_down": sum(q.down for q in current),
    }


def per_day_of(current: list[Question], since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Each UTC day of the window (empty days too): questions by label, ratings up and down."""
    days: dict[date, dict[str, Any]] = {}
    day, last = (
        since.astimezone(UTC).date(),
        (until - timedelta(microseconds=1)).astimezone(UTC).date(),
    )
    while day <= last:
        days[day] = {
            "day": day.isoformat(),
            "questions": 0,
            **dict.fromkeys(LABELS, 0),
            "up": 0,
            "down": 0,
        }
        day += timedelta(days=1)
    for q in current:
        row = days[q.created_at.astimezone(UTC).date()]
        row["questions"] += 1
        if q.label in LABELS:
            row[q.label] += 1
        row["up"] += q.up
        row["down"] += q.down
    return list(days.values())


def compute_report(
    session: Session,
    since: datetime,
    until: datetime,
    *,
    catalogue: list[Page],
    groups: Groups | None = None,
    closest: Closest | None = None,
    explain: Explain | None = None,
) -> InsightsReport:
    """The report of [since, until), its trends against the window of the same length before."""
    previous = since - (until - since)
    questions = load_questions(session, since, until, previous)
    current = [q for q in questions if q.current]
    pick = centroid_pick(session, groups)
    pages, ratings = page_tables(questions, catalogue)
    return InsightsReport(
        since=since,
        until=until,
        computed_at=utcnow(),
        jobs_counted=len(current),
        totals=totals_of(current),
        per_day=per_day_of(current, since, until),
        gaps=coverage_gaps(
            questions, pick, closest or stored_passages(session), explain or (lambda row, m: None)
        ),
        most_asked=most_asked(questions, pick),
        pages=pages,
        ratings_per_page=ratings,
    )


def centroid_pick(session: Session, groups: Groups | None) -> Pick:
    """Represent a group by its member closest to the centroid (the commonest text without one)."""

    def pick(group_id: str, members: list[Question]) -> str:
        if groups is None or group_id not in groups.ids:
            return most_frequent(members)
        distinct: dict[str, Question] = {}
        for q in members:
            distinct.setdefault(normalised(q.message), q)
        sample = list(distinct.values())[:REPRESENTATIVE_SAMPLE]
        rows = dict(
            session.execute(
                select(QuestionVector.job_id, QuestionVector.vector).where(
                    QuestionVector.job_id.in_([q.id for q in sample])
                )
            ).all()
        )
        with_vectors = [q for q in sample if q.id in rows]
        if not with_vectors:
            return most_frequent(members)
        vectors = from_bytes((rows[q.id] for q in with_vectors), groups.dimension)
        return with_vectors[int(np.argmax(vectors @ groups.centroid(group_id)))].message

    return pick


def stored_passages(session: Session) -> Closest:
    """Closest passages from what the gap questions' own retrievals found (no search)."""

    def closest(representative: str, job_ids: list[uuid.UUID]) -> list[dict[str, Any]]:
        best: dict[str, dict[str, Any]] = {}
        for start in range(0, min(len(job_ids), 2000), 500):
            chunk = job_ids[start : start + 500]
            rows = session.execute(
                select(ChatJob.sources, ChatJob.citations).where(ChatJob.id.in_(chunk))
            )
            for sources, citations in rows:
                for passage in [*(sources or []), *(citations or [])]:
                    if not isinstance(passage, dict) or not passage.get("url"):
                        continue
                    seen = best.setdefault(
                        passage["url"],
                        {
                            "title": passage.get("title", ""),
                            "heading": passage.get("heading", ""),
                            "url": passage["url"],
                            "similarity": None,
                            "score": 0.0,
                            "times": 0,
                        },
                    )
                    seen["times"] += 1
                    seen["score"] = max(seen["score"], float(passage.get("score") or 0.0))
        ranked = sorted(best.values(), key=lambda p: (-p["times"], -p["score"], p["url"]))
        return ranked[:CLOSEST_PASSAGES]

    return closest
