"""Insights for the author: what readers ask, what the book fails to answer, which pages matter."""

from common.admin.insights.report import InsightsReport, current_report

__all__ = ["InsightsReport", "current_report"]
