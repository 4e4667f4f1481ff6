"""`bookchat ask` prints a stream's answer by the documented client rule."""

from __future__ import annotations

import io
from typing import Any

from cli.ask import AnswerPrinter
from common.jobs.events import JobEvent


def _event(n: int, event: str, **data: Any) -> JobEvent:
    return JobEvent(f"{n}-0", event, data)


def test_the_printer_starts_over_on_reset_and_stops_at_the_first_ending() -> None:
    out = io.StringIO()
    printer = AnswerPrinter(out=out)
    stream = [
        _event(1, "status", status="in_progress", attempt=1),
        _event(2, "delta", text="half an ans", attempt=1),
        _event(3, "status", status="in_progress", attempt=2),
        _event(4, "reset", attempt=2, reason="a new attempt starts over"),
        _event(5, "delta", text="late text of attempt 1", attempt=1),
        _event(6, "delta", text="The answer.", attempt=2),
        _event(7, "done", status="completed"),
    ]

    ended = [printer.take(event) for event in stream]

    assert ended == [False] * 6 + [True]
    assert printer.finished
    assert out.getvalue() == "half an ans\nThe answer."
