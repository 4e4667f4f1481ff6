"""Reading a chat job's Server-Sent Events through the Flask test client."""

from __future__ import annotations

import json
from typing import Any

from tests.support.stack import Stack


def read_events(
    stack: Stack, headers: dict[str, str], job_id: str, last_event_id: str | None = None
) -> list[dict[str, Any]]:
    """Parse the job's SSE stream until it closes."""
    if last_event_id:
        headers = {**headers, "Last-Event-ID": last_event_id}
    response = stack.client.get(f"/v1/chat/jobs/{job_id}/events", headers=headers)
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    body = response.get_data(as_text=True)
    response.close()  # as a server would once the stream ends: gives back its stream slot
    events = []
    for frame in body.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in frame.splitlines() if ": " in line and line[0] != ":"
        )
        if "event" in fields:
            events.append(
                {
                    "id": fields.get("id"),
                    "event": fields["event"],
                    "data": json.loads(fields["data"]),
                }
            )
    return events


def join_answer(events: list[dict[str, Any]]) -> str:
    """The answer text by the documented client rule.

    A `reset` drops the partial text; a delta of an attempt older than the newest one seen (in
    `status` or `reset`) is ignored.
    """
    text, attempt = "", 0
    for event in events:
        data = event["data"]
        if event["event"] in ("status", "reset") and "attempt" in data:
            attempt = max(attempt, int(data["attempt"]))
        if event["event"] == "reset":
            text = ""
        elif event["event"] == "delta" and int(data.get("attempt", attempt)) >= attempt:
            text += data["text"]
    return text
