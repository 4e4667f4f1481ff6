"""The insights numbers on a seeded database: totals, per day, gaps, most asked and pages."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session

from common.admin.insights.report import compute_report
from common.admin.insights.stored import InsightsReport
from common.admin.insights.vectors import embed_questions, missing_vectors, place_vectors
from common.book.retrieval.embeddings import LocalMiniLM
from tests.common.admin.insights.seed import (
    CATALOGUE,
    INTRO,
    LIDAR,
    NODES,
    SINCE,
    TOPICS,
    UNTIL,
    URDF,
    seed,
)


@pytest.fixture(scope="module")
def embedder() -> LocalMiniLM:
    return LocalMiniLM(threads=1)


def grouped_report(session: Session, embedder: LocalMiniLM) -> dict[str, Any]:
    seed(session)
    previous = SINCE - (UNTIL - SINCE)
    embed_questions(
        session, embedder, missing_vectors(session, embedder.name, previous, UNTIL),
        lambda done, total: None,
    )  # fmt: skip
    groups = place_vectors(session, embedder.name, embedder.dimension, lambda d, t: None)
    report = compute_report(session, SINCE, UNTIL, catalogue=CATALOGUE, groups=groups)
    return report.to_dict()


def test_totals_and_days_count_each_question_and_rating(
    session: Session, embedder: LocalMiniLM
) -> None:
    report = grouped_report(session, embedder)
    assert report["jobs_counted"] == 7
    assert report["totals"] == {
        "questions": 7, "answered": 3, "refused": 2, "uncertain": 1, "off_topic": 1,
        "rated_up": 3, "rated_down": 2,
    }  # fmt: skip
    assert report["per_day"] == [
        {"day": "2026-12-01", "questions": 4, "answered": 1, "refused": 2, "uncertain": 0,
         "off_topic": 1, "up": 1, "down": 1},
        {"day": "2026-12-02", "questions": 2, "answered": 1, "refused": 0, "uncertain": 1,
         "off_topic": 0, "up": 0, "down": 1},
        {"day": "2026-12-03", "questions": 1, "answered": 1, "refused": 0, "uncertain": 0,
         "off_topic": 0, "up": 2, "down": 0},
    ]  # fmt: skip


def test_gaps_group_refused_uncertain_and_rated_down_by_meaning(
    session: Session, embedder: LocalMiniLM
) -> None:
    gaps = grouped_report(session, embedder)["gaps"]
    lidar, node = gaps
    assert lidar["count"] == 3
    assert lidar["labels"] == {"refused": 2, "uncertain": 1, "down": 1}
    assert lidar["trend"] == {"previous": 1, "current": 3}
    assert "lidar" in lidar["representative"].lower()
    assert len(lidar["examples"]) == 2
    assert {p["url"] for p in lidar["closest_passages"]} == {LIDAR.url}
    assert lidar["finding"] is None and lidar["suggestion"] is None
    assert node["count"] == 1
    assert node["representative"] == "Can you explain what a node is in ROS 2?"
    assert node["labels"] == {"refused": 0, "uncertain": 0, "down": 1}
    assert node["trend"] == {"previous": 0, "current": 1}


def test_most_asked_groups_every_question_with_share_and_rating(
    session: Session, embedder: LocalMiniLM
) -> None:
    most = grouped_report(session, embedder)["most_asked"]
    by_topic = {("node" if "node" in g["representative"] else g["representative"]): g for g in most}
    node = by_topic["node"]
    assert (node["count"], node["share"], node["up"], node["down"]) == (3, 0.4286, 3, 1)
    assert node["representative"] == "What is a ROS 2 node?"
    assert node["examples"] == ["Can you explain what a node is in ROS 2?"]
    assert [g["count"] for g in most] == [3, 3, 1]
    assert sum(g["count"] for g in most) == 7


def test_pages_cited_most_in_thumbs_down_and_never(session: Session, embedder: LocalMiniLM) -> None:
    report = grouped_report(session, embedder)
    pages = report["pages"]
    assert [(p["url"], p["citations"], p["up"], p["down"]) for p in pages["most_cited"]] == [
        (NODES.url, 3, 3, 1),
        (TOPICS.url, 1, 0, 1),  # ties by URL
        (LIDAR.url, 1, 0, 0),
    ]
    assert [(p["url"], p["citations"]) for p in pages["cited_in_down"]] == [
        (NODES.url, 1),
        (TOPICS.url, 1),
    ]
    assert [p["url"] for p in pages["never_cited"]] == [INTRO.url, URDF.url]
    assert pages["most_cited"][0]["title"] == "Nodes"
    assert [(p["url"], p["up"], p["down"]) for p in report["ratings_per_page"]] == [
        (NODES.url, 3, 1),
        (TOPICS.url, 0, 1),
    ]


def test_a_report_without_vectors_groups_identical_wordings(session: Session) -> None:
    seed(session)
    report = compute_report(session, SINCE, UNTIL, catalogue=CATALOGUE)
    assert report.totals["questions"] == 7
    assert report.most_asked[0]["count"] == 2
    assert InsightsReport.from_dict(report.to_dict()) == report
