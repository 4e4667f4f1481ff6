"""Each table of the insights report as CSV, built from the report's dict with the csv module."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from typing import Any

from common.platform.errors import InvalidInput

Row = dict[str, Any]
# A spreadsheet runs a cell starting with one of these as a formula; readers write the questions.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PAGE_LISTS = ("most_cited", "cited_in_down", "never_cited")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _per_day(report: Row) -> Iterable[Row]:
    yield from report.get("per_day", [])


def _gaps(report: Row) -> Iterable[Row]:
    for gap in report.get("gaps", []):
        trend, labels = gap.get("trend") or {}, gap.get("labels") or {}
        passages = gap.get("closest_passages") or []
        yield {
            "id": gap.get("id"),
            "representative": gap.get("representative"),
            "count": gap.get("count"),
            "previous": trend.get("previous"),
            "current": trend.get("current"),
            "refused": labels.get("refused", 0),
            "uncertain": labels.get("uncertain", 0),
            "down": labels.get("down", 0),
            "examples": " | ".join(gap.get("examples") or []),
            "closest_passages": " | ".join(p.get("url") or p.get("title") or "" for p in passages),
            "finding": gap.get("finding"),
            "suggestion": gap.get("suggestion"),
        }


def _most_asked(report: Row) -> Iterable[Row]:
    for group in report.get("most_asked", []):
        yield {**group, "examples": " | ".join(group.get("examples") or [])}


def _pages(report: Row) -> Iterable[Row]:
    pages = report.get("pages") or {}
    for name in _PAGE_LISTS:
        for page in pages.get(name, []):
            yield {"list": name, **page}


def _ratings_per_page(report: Row) -> Iterable[Row]:
    yield from report.get("ratings_per_page", [])


TABLES: dict[str, tuple[tuple[str, ...], Callable[[Row], Iterable[Row]]]] = {
    "per_day": (
        ("day", "questions", "answered", "refused", "uncertain", "off_topic", "up", "down"),
        _per_day,
    ),
    "gaps": (
        (
            "id", "representative", "count", "previous", "current", "refused", "uncertain",
            "down", "examples", "closest_passages", "finding", "suggestion",
        ),
        _gaps,
    ),
    "most_asked": (
        ("id", "representative", "count", "share", "up", "down", "examples"),
        _most_asked,
    ),
    "pages": (("list", "url", "title", "source", "citations", "up", "down"), _pages),
    "ratings_per_page": (("url", "title", "source", "up", "down"), _ratings_per_page),
}  # fmt: skip


def report_csv(report: Row, table: str) -> str:
    """One table of the report as CSV with a header row; unknown names are InvalidInput."""
    if table not in TABLES:
        raise InvalidInput(f"table must be one of {', '.join(TABLES)}")
    columns, rows = TABLES[table]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for row in rows(report):
        writer.writerow({name: _cell(row.get(name)) for name in columns})
    return out.getvalue()
