"""The report's tables as CSV, one table per file, for spreadsheets."""

from __future__ import annotations

import csv
import io
from typing import Any

TABLES = ("gaps", "most_asked", "pages", "per_day")
_COLUMNS = {
    "gaps": ["id", "representative", "count", "previous", "refused", "uncertain", "down",
             "examples", "closest_pages", "finding", "suggestion"],
    "most_asked": ["id", "representative", "count", "share", "up", "down", "examples"],
    "pages": ["list", "url", "title", "source", "citations", "up", "down"],
    "per_day": ["day", "questions", "answered", "refused", "uncertain", "off_topic", "up",
                "down"],
}  # fmt: skip


def table_rows(report: dict[str, Any], table: str) -> list[dict[str, Any]]:
    """One table of the report as flat rows (lists joined with ' | ')."""
    if table == "per_day":
        return list(report["per_day"])
    if table == "most_asked":
        return [{**g, "examples": " | ".join(g["examples"])} for g in report["most_asked"]]
    if table == "gaps":
        return [
            {
                **g,
                "previous": g["trend"]["previous"],
                **g["labels"],
                "examples": " | ".join(g["examples"]),
                "closest_pages": " | ".join(p["url"] for p in g["closest_passages"]),
            }
            for g in report["gaps"]
        ]
    return [
        {"list": name, **page}
        for name in ("most_cited", "cited_in_down", "never_cited")
        for page in report["pages"][name]
    ]


def table_csv(report: dict[str, Any], table: str) -> str:
    """One table of the report as CSV text with a header row."""
    out = io.StringIO()
    writer = csv.DictWriter(out, _COLUMNS[table], extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for row in table_rows(report, table):
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return out.getvalue()


def _cell(value: Any) -> Any:
    # A spreadsheet runs a cell that starts like a formula; a leading quote keeps it text.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value
