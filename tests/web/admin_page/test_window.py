"""The window the admin page reports on."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from common.platform.errors import InvalidInput
from web.admin_page.window import parse_window

NOW = datetime(2026, 12, 4, 10, 30, tzinfo=UTC)


def test_presets_end_tomorrow_midnight_and_include_today() -> None:
    week = parse_window({}, NOW)
    month = parse_window({"window": "30d"}, NOW)

    assert week.since == datetime(2026, 11, 28, tzinfo=UTC)
    assert week.until == datetime(2026, 12, 5, tzinfo=UTC)
    assert month.since == datetime(2026, 11, 5, tzinfo=UTC)
    assert (week.since_day, week.until_day) == ("2026-11-28", "2026-12-04")
    assert week.query() == {"window": "7d"}


def test_custom_dates_include_their_last_day() -> None:
    window = parse_window({"window": "custom", "since": "2026-11-01", "until": "2026-11-03"}, NOW)

    assert window.since == datetime(2026, 11, 1, tzinfo=UTC)
    assert window.until == datetime(2026, 11, 4, tzinfo=UTC)
    assert window.query() == {"window": "custom", "since": "2026-11-01", "until": "2026-11-03"}


@pytest.mark.parametrize(
    "values",
    [
        {"window": "1y"},
        {"window": "custom"},
        {"window": "custom", "since": "2026-11-05", "until": "2026-11-01"},
        {"window": "custom", "since": "2024-01-01", "until": "2026-11-01"},
        {"window": "custom", "since": "yesterday", "until": "2026-11-01"},
    ],
)
def test_bad_windows_are_invalid_input(values: dict[str, str]) -> None:
    with pytest.raises(InvalidInput):
        parse_window(values, NOW)
