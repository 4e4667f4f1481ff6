"""How a finished chat job's stream ends: its citations, then one terminal `done`.

The worker sends these after the answer is recorded, and a reader replaying an expired stream
rebuilds them from the row, so both say the same thing (docs/api.md, "Events").
"""

from __future__ import annotations

from typing import Any

from common.platform.models import JobStatus


def incomplete_details(reason: str | None) -> dict[str, str] | None:
    """OpenAI's `incomplete_details` for a cut-off answer; None for a whole one."""
    return {"reason": reason} if reason else None


def citations_data(citations: list[Any], sources: list[Any] | None) -> dict[str, Any]:
    """The `citations` event: what the answer cites, and what was retrieved but not cited."""
    return {"citations": citations, "sources": sources or []}


def done_data(status: str, incomplete_reason: str | None = None, **extra: Any) -> dict[str, Any]:
    """The terminal `done` event; an `incomplete` job's says why it stopped early."""
    data: dict[str, Any] = {"status": status, **extra}
    if status == JobStatus.INCOMPLETE.value:
        data["incomplete_details"] = incomplete_details(incomplete_reason)
    return data


def ending_events(
    status: str,
    citations: list[Any],
    sources: list[Any] | None,
    incomplete_reason: str | None = None,
    **extra: Any,
) -> list[tuple[str, dict[str, Any]]]:
    """The events that close an answered job's stream, in order: `citations`, then `done`."""
    return [
        ("citations", citations_data(citations, sources)),
        ("done", done_data(status, incomplete_reason, **extra)),
    ]
