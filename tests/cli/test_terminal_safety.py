"""The operator's terminal obeys no reader: controls and bidi marks are shown, never sent raw."""

from __future__ import annotations

import json
import re
import uuid

from cli.admin_views import clip, table
from cli.terminal import printable, safe_json
from common.jobs.chat_jobs import submit_chat_job
from common.jobs.schemas import ChatJobCreate
from common.platform.db import session_scope
from common.platform.models import ChatJob, JobStatus, utcnow
from tests.cli.test_admin import ok, reader, run_cli
from tests.support.stack import Stack

# Retitle the terminal (OSC ... BEL), clear it (CSI 2J), overwrite the row (CR), reverse the
# rest (U+202E), an 8-bit CSI (C1 0x9b), a bidi isolate and a line separator.
HOSTILE = "Hi\x1b]0;pwned\x07 \x1b[2J\rFAKE ROW\u202eesrever\x9b31m\u2066x\u2069\u2028end"
RAW = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def test_printable_shows_every_control_and_bidi_character() -> None:
    shown = printable(HOSTILE + "\n\t\x00\u200e\u200f\u061c\u202a\u2069")

    assert not RAW.search(shown) and "\n" not in shown
    for escape in ("\\x1b", "\\x07", "\\r", "\\u202e", "\\x9b", "\\u2066", "\\u2028", "\\n"):
        assert escape in shown, escape
    assert printable(shown) == shown  # escaping twice changes nothing
    assert printable("Grüße, 日本語 ✓") == "Grüße, 日本語 ✓"  # text as it is
    assert printable("one\ntwo\x1b", keep="\n") == "one\ntwo\\x1b"


def test_json_output_escapes_them_and_still_parses() -> None:
    text = safe_json({"message": HOSTILE, "name": "Grüße"})

    assert not RAW.search(text)
    assert "Grüße" in text
    assert json.loads(text) == {"message": HOSTILE, "name": "Grüße"}


def test_tables_and_clipped_cells_are_printable() -> None:
    drawn = table(["A", "B"], [[HOSTILE, "x"], ["y", clip(HOSTILE, 20)]])

    assert not RAW.search(drawn)
    assert len(drawn.splitlines()) == 3  # no row was added or overwritten


def test_admin_jobs_and_show_print_a_hostile_message_visibly(stack: Stack) -> None:
    _headers, user_id = reader(stack)
    with session_scope(stack.resources.sessions) as session:
        job, _ = submit_chat_job(session, user_id, ChatJobCreate(message="placeholder"), None)
        row = session.get(ChatJob, job.id)
        assert row is not None
        row.message = HOSTILE
        row.status, row.error_code = JobStatus.FAILED.value, "llm_unavailable"
        row.error_message = f"the model said {HOSTILE}"
        row.enqueued_at, row.completed_at = None, utcnow()
        job_id = str(job.id)

    listed = ok(run_cli(stack, "admin", "jobs", "--user", str(user_id)))
    shown = ok(run_cli(stack, "admin", "show", job_id))
    dumped = ok(run_cli(stack, "admin", "show", job_id, "--json"))
    dead = ok(run_cli(stack, "admin", "dlq", "--user", str(user_id)))

    for out in (listed, shown, dumped, dead):
        assert not RAW.search(out), out
    assert len(listed.splitlines()) == 2 and listed.splitlines()[1].startswith(job_id)
    assert "\\x1b]0;pwned\\x07" in shown and "\\u202eesrever" in shown
    assert "\\x1b" in listed and "FAKE ROW" in listed
    assert json.loads(dumped)["summary"].startswith("Hi\x1b]0;pwned\x07")
    assert uuid.UUID(job_id)
