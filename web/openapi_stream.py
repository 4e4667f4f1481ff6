"""The job event stream as the OpenAPI document describes it: an SSE body and its events.

Before OpenAPI 3.2 (`itemSchema`), the `schema` of a `text/event-stream` body describes one
event as the SSE parser yields it (`event`, `data`, `id`, `retry`), which is how Schemathesis
checks a stream; `x-events` names every event with the schema of its JSON `data` (components
`Event*`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from common.jobs.schemas import Citation, IncompleteDetails

_STATUS = Literal["queued", "in_progress", "completed", "incomplete", "failed", "cancelled"]


class _Data(BaseModel):
    model_config = ConfigDict(extra="allow")


class EventStatus(_Data):
    """`status`: the job's status changed (a wait says when it is retried, and why)."""

    status: _STATUS
    attempt: int | None = Field(default=None, description="The attempt now running")
    retry_in: float | None = Field(default=None, description="Seconds until the job runs again")
    reason: str | None = None


class EventDelta(_Data):
    """`delta`: more answer text; ignore it when its `attempt` is older than the newest seen."""

    text: str
    attempt: int


class EventReset(_Data):
    """`reset`: drop the partial text received so far (a new attempt, or a checked answer)."""

    reason: str
    attempt: int | None = None


class EventCitations(_Data):
    """`citations`: the passages the final answer cites, and those retrieved but not cited."""

    citations: list[Citation]
    sources: list[Citation]


class EventDone(_Data):
    """`done`: the stream's end; `status` tells a whole answer from a cut-off or cancelled one."""

    status: _STATUS
    incomplete_details: IncompleteDetails | None = None


class EventError(_Data):
    """`error`: the job failed (`code`, `message`), or Redis went away mid-stream (`retry`)."""

    code: str
    message: str | None = Field(default=None, description="Why the job failed")
    detail: str | None = Field(default=None, description="Why the stream stopped")
    retry: int | None = Field(default=None, description="Seconds before reconnecting")


class EventTimeout(_Data):
    """`timeout`: the stream reached its time limit; reconnect with Last-Event-ID."""

    detail: str


EVENTS: dict[str, type[BaseModel]] = {
    "status": EventStatus,
    "delta": EventDelta,
    "reset": EventReset,
    "citations": EventCitations,
    "done": EventDone,
    "error": EventError,
    "timeout": EventTimeout,
}

EVENT_STREAM_RESPONSE: dict[str, Any] = {
    "description": (
        "Server-Sent Events (`text/event-stream`, UTF-8): frames of `id:`, `event:` and one "
        "`data:` line holding a JSON object, a `retry:` hint first, and `: ping` comments every "
        "15 s. Events: `status`, `delta`, `reset`, `citations`, then `done` or `error`, which "
        "ends the stream (`timeout` after 10 minutes). Resume with Last-Event-ID or "
        "`?starting_after=`; frames replayed from the job's row after `reset` carry no id."
    ),
    "content": {
        "text/event-stream": {
            "schema": {
                "type": "object",
                "description": "One event, as an SSE parser yields it",
                "required": ["event", "data"],
                "properties": {
                    "event": {"enum": list(EVENTS)},
                    "data": {
                        "type": "string",
                        "contentMediaType": "application/json",
                        "description": "A JSON object: its schema is the event's in x-events",
                    },
                    "id": {"type": "string"},
                    "retry": {"type": "integer"},
                },
            },
            "x-events": {
                name: {"data": {"$ref": f"#/components/schemas/{model.__name__}"}}
                for name, model in EVENTS.items()
            },
        }
    },
}


def event_schemas() -> dict[str, Any]:
    """The components the stream's `x-events` refer to (and the models they use)."""
    schemas: dict[str, Any] = {}
    for model in EVENTS.values():
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas
