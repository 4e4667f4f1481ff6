"""`bookchat admin insights`: the author's report for a window, computed by a worker if needed.

It reads the latest report computed for the window; without one it starts a run on the
`reprocess` queue (as the API does), shows its progress on stderr and prints the report as
tables, JSON (what the API returns) or one table as CSV.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from typing import Any

from cli.admin_views import clip, table
from cli.client import require_worker
from cli.operator import Operator
from cli.terminal import printable, safe_json
from common.admin.insights import current_report
from common.admin.insights.runs import get_run, run_body, start_run
from common.admin.insights.schemas import resolve_window
from common.admin.insights.tables import TABLES, table_csv
from common.admin.schemas import check_since
from common.jobs.queue import REPROCESS_QUEUE
from common.platform.after_commit import commit
from common.platform.db import session_scope
from common.platform.models import FINISHED_STATUSES, JobStatus

FINISHED = {status.value for status in FINISHED_STATUSES}
WAIT_EXIT = 2


def insights(op: Operator, args: argparse.Namespace) -> int:
    """Print the report of the window, waiting for a run when none is computed yet."""
    since, until = resolve_window(check_since(args.since), check_since(args.until))
    with session_scope(op.sessions) as session:
        report = current_report(session, since, until)
        body = report.to_dict() if report is not None else None
    if body is None:
        require_worker(op.redis(), REPROCESS_QUEUE)
        celery = op.celery()
        with session_scope(op.sessions) as session:
            run = start_run(session, celery, since, until, requested_by=None)
            commit(session)
            run_id = run.id
        print(f"computing insights as run {run_id}", file=sys.stderr)
        finished = _wait(op, run_id, args.timeout)
        if finished["status"] != JobStatus.COMPLETED.value:
            state = finished["status"]
            print(f"insights run {run_id} is {state}", file=sys.stderr)
            return WAIT_EXIT if state not in FINISHED else 1
        body = finished["report"]
    if args.format == "json":
        print(safe_json(body))
    elif args.format == "csv":
        sys.stdout.write(table_csv(body, args.table or TABLES[0]))
    else:
        print(report_text(body))
    return 0


def _wait(op: Operator, run_id: uuid.UUID, timeout: float) -> dict[str, Any]:
    deadline, shown = time.monotonic() + timeout, ""
    while True:
        with session_scope(op.sessions) as session:
            body = run_body(*get_run(session, run_id))
        line = f"{body['status']} {body['stage']} {progress(body)}"
        if line != shown:
            print(line, file=sys.stderr)
            shown = line
        if body["status"] in FINISHED or time.monotonic() >= deadline:
            return body
        time.sleep(0.5)


def progress(body: dict[str, Any]) -> str:
    """processed/total of a run's stage."""
    done = body["progress"]
    return f"{done['processed']}/{done['total']}"


def report_text(body: dict[str, Any]) -> str:
    """The report as readable tables."""
    totals = body["totals"]
    parts = [
        f"insights {body['since'][:16]} .. {body['until'][:16]}"
        f"  (computed {body['computed_at'][:19]})",
        "  ".join(f"{k} {v}" for k, v in totals.items()),
        "",
        table(
            ["day", "questions", "answered", "refused", "uncertain", "off_topic", "up", "down"],
            [[str(d[k]) for k in ("day", "questions", "answered", "refused", "uncertain",
                                  "off_topic", "up", "down")] for d in body["per_day"]],
        ),
        "",
        "coverage gaps",
        table(
            ["id", "count", "trend", "refused", "uncertain", "down", "representative"],
            [[g["id"], str(g["count"]), f"{g['trend']['previous']}->{g['trend']['current']}",
              str(g["labels"]["refused"]), str(g["labels"]["uncertain"]),
              str(g["labels"]["down"]), clip(g["representative"], 60)] for g in body["gaps"]],
        ),
        "",
        "most asked",
        table(
            ["id", "count", "share", "up", "down", "representative"],
            [[g["id"], str(g["count"]), f"{g['share']:.1%}", str(g["up"]), str(g["down"]),
              clip(g["representative"], 60)] for g in body["most_asked"]],
        ),
        "",
        "pages cited most",
        table(
            ["citations", "up", "down", "source", "url"],
            [[str(p["citations"]), str(p["up"]), str(p["down"]), p["source"], p["url"]]
             for p in body["pages"]["most_cited"]],
        ),
        "",
        f"pages never cited: {len(body['pages']['never_cited'])}",
    ]  # fmt: skip
    for gap in body["gaps"]:
        if gap.get("finding"):
            parts += ["", f"{gap['id']}: {printable(gap['finding'])}"]
            parts.append(f"  suggestion: {printable(gap['suggestion'] or '-')}")
    return "\n".join(parts)
