"""Filters an operator types: durations, times, and what is refused."""

from __future__ import annotations

from datetime import timedelta

import pytest

from common.admin.schemas import parse_since
from common.platform.models import utcnow


def test_durations_count_back_from_now() -> None:
    assert abs(utcnow() - timedelta(hours=1) - parse_since("1h")) < timedelta(seconds=5)
    assert abs(utcnow() - timedelta(days=2) - parse_since("2d")) < timedelta(seconds=5)


def test_an_iso_time_without_a_zone_is_utc() -> None:
    assert parse_since("2026-01-02T03:04:05").utcoffset() == timedelta(0)


@pytest.mark.parametrize("value", ["yesterday", "1y", "-1h", "999999d", ""])
def test_nonsense_is_a_value_error(value: str) -> None:
    with pytest.raises(ValueError):
        parse_since(value)
