"""Insights for the author: what readers ask, what the book fails to answer, which pages matter."""

from common.admin.insights.report import InsightsReport, current_report, latest_report
from common.admin.insights.runs import get_run, run_body, start_run

__all__ = ["InsightsReport", "current_report", "get_run", "latest_report", "run_body", "start_run"]
