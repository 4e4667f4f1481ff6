"""How the page renders a stored report: findings shown, readers' text escaped, no bad links.

The report is a stored run's row (as a worker leaves it), for a window no other test uses.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from common.platform.db import session_scope
from common.platform.models import InsightsRun, JobStatus, ReprocessJob
from tests.support.stack import Stack
from tests.web.admin_page.helpers import make_account, sign_in

SINCE, UNTIL = datetime(2022, 2, 1, tzinfo=UTC), datetime(2022, 2, 8, tzinfo=UTC)
WINDOW = "window=custom&since=2022-02-01&until=2022-02-07"
HOSTILE = '<script>alert("q")</script><img src=x onerror=alert(1)>'


def _report() -> dict[str, Any]:
    page = {"url": "javascript:alert(1)", "title": HOSTILE, "source": "x.md", "citations": 3,
            "up": 1, "down": 2}  # fmt: skip
    return {
        "object": "insights", "since": "2022-02-01T00:00:00Z", "until": "2022-02-08T00:00:00Z",
        "computed_at": "2022-02-08T01:00:00Z", "jobs_counted": 3,
        "totals": {"questions": 3, "answered": 1, "refused": 2, "uncertain": 0, "off_topic": 0,
                   "rated_up": 1, "rated_down": 2},
        "per_day": [{"day": "2022-02-01", "questions": 3, "answered": 1, "refused": 2,
                     "uncertain": 0, "off_topic": 0, "up": 1, "down": 2}],
        "gaps": [{"id": "g-1", "representative": HOSTILE, "count": 2,
                  "trend": {"previous": 0, "current": 2}, "labels": {"refused": 2},
                  "examples": [HOSTILE],
                  "closest_passages": [{"title": "Sensors", "heading": "Lidar",
                                        "url": "https://book.example/sensors#lidar",
                                        "similarity": 0.41}],
                  "finding": "Readers ask how to calibrate sensors; no page covers it.",
                  "suggestion": "Add a section on lidar calibration."}],
        "most_asked": [{"id": "q-1", "representative": HOSTILE, "count": 3, "share": 1.0,
                        "up": 1, "down": 2, "examples": [HOSTILE]}],
        "pages": {"most_cited": [page], "cited_in_down": [page], "never_cited": []},
        "ratings_per_page": [page],
    }  # fmt: skip


def _store(stack: Stack) -> None:
    with session_scope(stack.resources.sessions) as session:
        job = ReprocessJob(
            operation="insights",
            filters={},
            request_hash="0" * 64,
            status=JobStatus.COMPLETED.value,
        )
        session.add(job)
        session.flush()
        session.add(
            InsightsRun(
                id=job.id,
                since=SINCE,
                until=UNTIL,
                stage="done",
                report=_report(),
                computed_at=datetime(2022, 2, 8, 1, tzinfo=UTC),
            )
        )


def test_a_stored_report_is_rendered_safely(idle_stack: Stack) -> None:
    _store(idle_stack)
    client = idle_stack.app.test_client()
    sign_in(client, make_account(idle_stack))

    text = client.get(f"/admin/?{WINDOW}").get_data(as_text=True)

    assert "<script" not in text and "<img" not in text
    assert "&lt;script&gt;" in text  # the question is shown, as text
    assert "javascript:" not in text  # a link the book would never cite is no link
    assert "Readers ask how to calibrate sensors; no page covers it." in text
    assert "Add a section on lidar calibration." in text
    assert 'href="https://book.example/sensors#lidar"' in text
    assert "trend 0 → 2" in text and "(rising)" in text
    assert re.search(r'<svg class="chart" id="chart-rates".*?<polyline', text, re.S)
