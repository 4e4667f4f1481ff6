"""What the page draws from an insights report: its charts and the numbers behind them."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from markupsafe import Markup

from web.admin_page.charts import Series, bar_chart, line_chart, ranking_chart
from web.widget import BOOK_PREFIX

RANKED = 10  # bars in a ranking chart; the tables list every row


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def daily_rates(per_day: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per day: the share of questions refused and the share of rated answers rated down."""
    return [
        {
            "day": day["day"],
            "refused": _rate(day.get("refused", 0), day.get("questions", 0)),
            "down": _rate(day.get("down", 0), day.get("up", 0) + day.get("down", 0)),
        }
        for day in per_day
    ]


def safe_href(url: str | None) -> str | None:
    """A link to a cited page: http(s) as is, a book path to the demo's copy; else no link."""
    if not url:
        return None
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        return url
    if not scheme and url.startswith("/") and not url.startswith("//"):
        return BOOK_PREFIX + url  # where the widget's citation links lead on this server too
    return None


def _short(text: str, limit: int = 70) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def build_charts(report: dict[str, Any]) -> dict[str, Markup]:
    """The page's four charts, by name."""
    per_day = report.get("per_day", [])
    rates = daily_rates(per_day)
    days = [day["day"][5:] for day in per_day]  # "12-01": the year is in the window
    most_cited = report.get("pages", {}).get("most_cited", [])[:RANKED]
    gaps = report.get("gaps", [])[:RANKED]
    return {
        "questions": bar_chart(
            [(day, d.get("questions", 0)) for day, d in zip(days, per_day, strict=True)],
            chart_id="chart-questions",
            title="Questions per day",
            desc=f"{sum(d.get('questions', 0) for d in per_day)} questions over "
            f"{len(per_day)} days; the table below lists each day.",
            empty_message="No questions in this window",
        ),
        "rates": line_chart(
            days,
            [
                Series("refused", [r["refused"] for r in rates]),
                Series("thumbs down", [r["down"] for r in rates]),
            ],
            chart_id="chart-rates",
            title="Refusal and thumbs-down rates per day",
            desc="Refused questions as a share of the day's questions, and thumbs down as a "
            "share of the day's rated answers; days without any are gaps in the line.",
            empty_message="No questions or ratings in this window",
        ),
        "gaps": ranking_chart(
            [(_short(g.get("representative", "")), g.get("count", 0)) for g in gaps],
            chart_id="chart-gaps",
            title="Largest coverage gaps",
            desc="Groups of refused, uncertain and thumbs-down questions by size; "
            "the gap list below details each.",
            empty_message="No coverage gaps in this window",
        ),
        "pages": ranking_chart(
            [(_short(p.get("title") or p.get("url", "")), p["citations"]) for p in most_cited],
            chart_id="chart-pages",
            title="Most cited pages",
            desc="The pages answers cited most in this window; the table below lists them.",
            empty_message="No citations in this window",
        ),
    }
