"""Each gap group's finding and suggestion from a model (the OpenAI simulator), cached per group."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis
from sqlalchemy.orm import Session

from bench.openai_sim import SimulatorHandle
from common.admin.insights.findings import ModelExplainer, parse
from common.admin.insights.report import compute_report
from common.platform.models import ChatJob, InsightsFinding, User
from tests.common.admin.insights.seed import CATALOGUE, SINCE, UNTIL, seed
from tests.common.llm.harness import build


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url, decode_responses=True)
    yield connection
    connection.close()


def test_each_gap_gets_a_finding_once_per_member_set(
    session: Session, sim: SimulatorHandle, redis_client: redis.Redis
) -> None:
    harness = build(sim, redis_client)
    seed(session)
    explain = ModelExplainer(session, harness.client, harness.model)

    report = compute_report(session, SINCE, UNTIL, catalogue=CATALOGUE, explain=explain)
    assert len(report.gaps) == 4
    for gap in report.gaps:
        assert gap["representative"] in gap["finding"]
        assert gap["suggestion"].startswith("add a short section")
    assert len(harness.requests()) == 4
    explain.save()

    again = compute_report(session, SINCE, UNTIL, catalogue=CATALOGUE, explain=explain)
    assert [g["finding"] for g in again.gaps] == [g["finding"] for g in report.gaps]
    assert len(harness.requests()) == 4  # every group's member set was asked about already

    reader = User(email="another-reader@example.com")
    session.add(reader)
    session.flush()
    session.add(
        ChatJob(user_id=reader.id, message="How do I calibrate a lidar?", request_hash="x",
                created_at=datetime(2026, 12, 3, 9, tzinfo=UTC), label="refused",
                status="completed")
    )  # fmt: skip
    session.flush()
    changed = compute_report(session, SINCE, UNTIL, catalogue=CATALOGUE, explain=explain)
    assert changed.gaps[0]["count"] == 2
    assert len(harness.requests()) == 5  # only the group that grew was asked again
    explain.save()
    assert session.query(InsightsFinding).count() == 5


def test_a_reply_without_a_suggestion_line_keeps_the_finding() -> None:
    assert parse("Finding: readers want X.\nSuggestion: add X.") == ("readers want X.", "add X.")
    assert parse("Readers want X.") == ("Readers want X.", "")
