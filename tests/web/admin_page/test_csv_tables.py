"""The page's CSV downloads (the API's tables): every table, a header row, no formula injection."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from common.platform.errors import InvalidInput
from web.admin_page.csv_tables import TABLES, report_csv

REPORT: dict[str, Any] = {
    "per_day": [
        {"day": "2026-12-01", "questions": 12, "answered": 9, "refused": 2, "uncertain": 1,
         "off_topic": 0, "up": 3, "down": 1},
    ],
    "gaps": [
        {"id": "g-1", "representative": "How do I calibrate a lidar?", "count": 4,
         "trend": {"previous": 1, "current": 3},
         "labels": {"refused": 3, "down": 1},
         "examples": ["calibrate lidar?", "lidar calibration, how"],
         "closest_passages": [{"title": "Sensors", "heading": "Lidar", "url": "/sensors#lidar",
                               "similarity": 0.41}],
         "finding": None, "suggestion": None},
    ],
    "most_asked": [
        {"id": "q-1", "representative": "=HYPERLINK(\"http://evil\")", "count": 8, "share": 0.5,
         "up": 2, "down": 0, "examples": ["-1+2", "@SUM(A1)"]},
    ],
    "pages": {
        "most_cited": [{"url": "/nodes", "title": "Nodes", "source": "01/nodes.md",
                        "citations": 5, "up": 2, "down": 1}],
        "cited_in_down": [{"url": "/nodes", "title": "Nodes", "source": "01/nodes.md",
                           "citations": 1, "up": 0, "down": 1}],
        "never_cited": [{"url": "/qos", "title": "QoS", "source": "02/qos.md"}],
    },
    "ratings_per_page": [{"url": "/nodes", "title": "Nodes", "source": "01/nodes.md",
                          "up": 2, "down": 1}],
}  # fmt: skip


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_every_table_has_a_header_and_its_rows() -> None:
    counts = {table: len(_rows(report_csv(REPORT, table))) for table in TABLES}

    assert counts == {"per_day": 1, "gaps": 1, "most_asked": 1, "pages": 3}


def test_gap_rows_flatten_trend_labels_examples_and_passages() -> None:
    (gap,) = _rows(report_csv(REPORT, "gaps"))

    assert gap["representative"] == "How do I calibrate a lidar?"
    assert gap["previous"] == "1"
    assert (gap["refused"], gap["uncertain"], gap["down"]) == ("3", "", "1")
    assert gap["examples"] == "calibrate lidar? | lidar calibration, how"  # the comma quoted
    assert gap["closest_pages"] == "/sensors#lidar"
    assert gap["finding"] == ""


def test_pages_name_the_list_each_row_comes_from() -> None:
    rows = _rows(report_csv(REPORT, "pages"))

    assert [(r["list"], r["url"]) for r in rows] == [
        ("most_cited", "/nodes"), ("cited_in_down", "/nodes"), ("never_cited", "/qos"),
    ]  # fmt: skip
    assert rows[2]["citations"] == ""


def test_cells_a_spreadsheet_would_run_as_formulas_are_defused() -> None:
    (row,) = _rows(report_csv(REPORT, "most_asked"))

    assert row["representative"] == '\'=HYPERLINK("http://evil")'
    assert row["examples"] == "'-1+2 | @SUM(A1)"  # the joined cell starts with '-'


def test_an_empty_report_gives_headers_only() -> None:
    text = report_csv({"per_day": []}, "per_day")

    assert text == "day,questions,answered,refused,uncertain,off_topic,up,down\r\n"


def test_an_unknown_table_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        report_csv(REPORT, "users")
    with pytest.raises(InvalidInput):
        report_csv(REPORT, "ratings_per_page")  # shown on the page, not a download
