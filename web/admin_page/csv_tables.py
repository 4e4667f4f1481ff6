"""The CSV downloads: the API's tables (common.admin.insights.tables), one file per table."""

from __future__ import annotations

from typing import Any

from common.admin.insights.tables import TABLES, table_csv
from common.platform.errors import InvalidInput

__all__ = ["TABLES", "report_csv"]


def report_csv(report: dict[str, Any], table: str) -> str:
    """One table of the report as CSV, as the API answers it; unknown names are InvalidInput."""
    if table not in TABLES:
        raise InvalidInput(f"table must be one of {', '.join(TABLES)}")
    return table_csv(report, table)
