"""The time window the page reports on: the last 7 or 30 days, or custom dates."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from common.platform.errors import InvalidInput

PRESETS = {"7d": 7, "30d": 30}
DEFAULT = "7d"
MAX_DAYS = 366


@dataclass(frozen=True)
class Window:
    """[since, until) in UTC, and how the form names it."""

    choice: str
    since: datetime
    until: datetime

    @property
    def since_day(self) -> str:
        """The first day, for the form's date field."""
        return self.since.date().isoformat()

    @property
    def until_day(self) -> str:
        """The last day included, for the form's date field."""
        return (self.until - timedelta(days=1)).date().isoformat()

    def query(self) -> dict[str, str]:
        """The query string that names this window again (for links and redirects)."""
        if self.choice == "custom":
            return {"window": "custom", "since": self.since_day, "until": self.until_day}
        return {"window": self.choice}


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _day(values: Mapping[str, str], name: str) -> date:
    raw = values.get(name, "")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a date like 2026-12-01") from None


def parse_window(values: Mapping[str, str], now: datetime) -> Window:
    """The window a query string asks for; whole UTC days, today included."""
    choice = values.get("window") or DEFAULT
    tomorrow = _midnight(now.astimezone(UTC).date() + timedelta(days=1))
    if choice in PRESETS:
        return Window(choice, tomorrow - timedelta(days=PRESETS[choice]), tomorrow)
    if choice != "custom":
        raise InvalidInput("window must be 7d, 30d or custom")
    first, last = _day(values, "since"), _day(values, "until")
    if last < first:
        raise InvalidInput("the window's last day comes before its first")
    if (last - first).days >= MAX_DAYS:
        raise InvalidInput(f"the window spans at most {MAX_DAYS} days")
    return Window("custom", _midnight(first), _midnight(last + timedelta(days=1)))
