"""`bookchat admin insights` against a real stack: it waits for the run, then prints each format."""

from __future__ import annotations

import csv
import io
import json

import pytest

from common.platform.db import session_scope
from tests.cli.test_admin import ok, refused, run_cli
from tests.common.admin.insights.seed import seed_once
from tests.support.stack import Stack

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.slow,
]  # end to end: in `make test`, not `make test-fast`
# Not the API tests' window: their first request must find no report yet.
WINDOW = ("--since", "2026-12-01T00:00:00Z", "--until", "2026-12-03T23:00:00Z")


@pytest.fixture(scope="module")
def seeded(insights_stack: Stack) -> Stack:
    with session_scope(insights_stack.resources.sessions) as session:
        seed_once(session)
    return insights_stack


def test_json_waits_for_the_run_and_prints_the_report(seeded: Stack) -> None:
    result = run_cli(seeded, "admin", "insights", *WINDOW, "--format", "json")
    report = json.loads(ok(result))
    assert report["object"] == "insights"
    assert report["totals"]["questions"] == 7
    assert report["gaps"][0]["labels"] == {"refused": 2, "uncertain": 1, "down": 1}
    # The progress went to stderr, the report alone to stdout.
    assert "computing insights as run" in result.stderr


def test_table_and_csv_formats(seeded: Stack) -> None:
    text = ok(run_cli(seeded, "admin", "insights", *WINDOW))
    assert "coverage gaps" in text and "most asked" in text and "pages cited most" in text
    assert "2026-12-01" in text
    table = ok(run_cli(seeded, "admin", "insights", *WINDOW, "--format", "csv", "--table", "gaps"))
    rows = list(csv.DictReader(io.StringIO(table)))
    assert rows and "lidar" in rows[0]["representative"].lower()
    assert rows[0]["count"] == "3"


def test_windows_must_be_ordered(seeded: Stack) -> None:
    reversed_window = ("--since", "2026-12-04T00:00:00Z", "--until", "2026-12-01T00:00:00Z")
    assert "before" in refused(run_cli(seeded, "admin", "insights", *reversed_window))
