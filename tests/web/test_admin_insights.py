"""GET /v1/admin/insights through a real worker on the reprocess queue: 202, progress, then 200."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

import pytest
from sqlalchemy import select

from common.platform.db import session_scope
from common.platform.models import QuestionVector, utcnow
from tests.common.admin.insights.seed import seed_once
from tests.support.stack import Stack
from tests.web.assertions import assert_problem

pytestmark = [pytest.mark.timeout(240)]
WINDOW = "since=2026-12-01T00:00:00Z&until=2026-12-04T00:00:00Z"


@pytest.fixture(scope="module")
def seeded(insights_stack: Stack) -> Stack:
    with session_scope(insights_stack.resources.sessions) as session:
        seed_once(session)
    return insights_stack


def wait_for_run(stack: Stack, admin: dict[str, str], location: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        body = stack.client.get(location, headers=admin).get_json()
        if body["finished"]:
            return dict(body)
        time.sleep(0.2)
    raise AssertionError(f"the insights run did not finish: {stack.worker_log()}")


def test_a_report_is_computed_by_a_run_then_served(seeded: Stack) -> None:
    admin = seeded.admin()
    first = seeded.client.get(f"/v1/admin/insights?{WINDOW}", headers=admin)
    assert first.status_code == 202, first.get_json()
    location = first.headers["Location"]
    assert location == f"/v1/admin/insights/runs/{first.get_json()['id']}"
    assert first.get_json()["status"] in ("queued", "in_progress", "completed")

    run = wait_for_run(seeded, admin, location)
    assert run["status"] == "completed", run
    assert run["stage"] == "done"
    report = run["report"]
    assert report["totals"] == {
        "questions": 7, "answered": 3, "refused": 2, "uncertain": 1, "off_topic": 1,
        "rated_up": 3, "rated_down": 2,
    }  # fmt: skip
    lidar = report["gaps"][0]
    assert (lidar["count"], lidar["trend"]) == (3, {"previous": 1, "current": 3})
    # The worker searched the ingested book for the representative question.
    assert lidar["closest_passages"]
    assert all(isinstance(p["similarity"], float) for p in lidar["closest_passages"])
    assert lidar["finding"] is None  # no model configured
    # Every page of the sample book is listed; none of them was cited by the seeded answers.
    assert report["pages"]["never_cited"]
    assert all(p["url"] for p in report["pages"]["never_cited"])

    again = seeded.client.get(f"/v1/admin/insights?{WINDOW}", headers=admin)
    assert again.status_code == 200
    assert again.get_json()["run_id"] == run["id"]
    assert again.get_json()["totals"] == report["totals"]

    table = seeded.client.get(
        f"/v1/admin/insights?{WINDOW}&format=csv&table=per_day", headers=admin
    )
    assert table.status_code == 200
    assert table.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(table.get_data(as_text=True))))
    assert [(r["day"], r["questions"]) for r in rows] == [
        ("2026-12-01", "4"), ("2026-12-02", "2"), ("2026-12-03", "1"),
    ]  # fmt: skip


def test_a_second_run_embeds_only_new_questions(seeded: Stack) -> None:
    admin = seeded.admin()
    wait_for_run(seeded, admin, start(seeded, admin, WINDOW))  # every seeded question embedded
    before = utcnow()
    window = "since=2026-11-30T00:00:00Z&until=2026-12-03T00:00:00Z"
    run = wait_for_run(seeded, admin, start(seeded, admin, window))
    assert run["status"] == "completed"
    assert run["report"]["totals"]["questions"] == 7  # Nov 30 to Dec 2
    with session_scope(seeded.resources.sessions) as session:
        vectors = session.scalars(select(QuestionVector.created_at)).all()
    assert len(vectors) >= 8
    assert [at for at in vectors if at >= before] == []


def start(stack: Stack, admin: dict[str, str], window: str) -> str:
    """The Location of the run computing the window (or of its finished report's run)."""
    response = stack.client.get(f"/v1/admin/insights?{window}", headers=admin)
    if response.status_code == 200:
        return f"/v1/admin/insights/runs/{response.get_json()['run_id']}"
    assert response.status_code == 202, response.get_json()
    return str(response.headers["Location"])


def test_only_admins_see_insights(seeded: Stack) -> None:
    reader = seeded.signup()
    response = seeded.client.get(f"/v1/admin/insights?{WINDOW}", headers=reader)
    assert_problem(response, 403)
    assert_problem(seeded.client.get("/v1/admin/insights"), 401)


@pytest.mark.parametrize(
    "query",
    [
        "since=yesterday",
        "since=2026-12-04T00:00:00Z&until=2026-12-01T00:00:00Z",
        "format=xml",
        "table=pages&format=csv&extra=1",
    ],
)
def test_malformed_requests_are_4xx_problems(seeded: Stack, query: str) -> None:
    response = seeded.client.get(f"/v1/admin/insights?{query}", headers=seeded.admin())
    assert 400 <= response.status_code < 500
    assert response.mimetype == "application/problem+json"


def test_an_unknown_run_is_404(seeded: Stack) -> None:
    response = seeded.client.get(
        "/v1/admin/insights/runs/00000000-0000-0000-0000-000000000000", headers=seeded.admin()
    )
    assert_problem(response, 404)
