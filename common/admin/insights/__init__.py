"""Insights for the author: what readers ask, what the book fails to answer, which pages matter.

Importing this package pulls in no worker stack (numpy, the embedder): the web reads reports
(`stored`) and starts runs (`runs`); the worker computes them (`computing`, `report`).
"""

from common.admin.insights.runs import get_run, run_body, start_run
from common.admin.insights.stored import InsightsReport, current_report, latest_report

__all__ = ["InsightsReport", "current_report", "get_run", "latest_report", "run_body", "start_run"]
