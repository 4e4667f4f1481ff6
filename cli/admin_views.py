"""Readable tables for `bookchat admin`, drawn from the same JSON bodies the API returns.

Every cell and value goes through `cli.terminal.printable`: a reader's message cannot drive the
operator's terminal.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from cli.terminal import printable

SUMMARY_CHARS = 48
DETAIL_CHARS = 60


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Aligned columns, two spaces apart, headers first (every cell made printable)."""
    headers = [printable(h) for h in headers]
    rows = [[printable(cell) for cell in row] for row in rows]
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *rows]
    ]
    return "\n".join(lines)


def clip(text: str | None, chars: int) -> str:
    """One line of at most `chars` characters; '-' for nothing."""
    if not text:
        return "-"
    line = " ".join(text.split())
    return printable(line if len(line) <= chars else line[: chars - 1] + "…")


def duration(seconds: float | None) -> str:
    """12s, 3m, 5h or 2d; '-' for none."""
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def moment(iso: str | None) -> str:
    """An ISO time to the second, as `2025-01-31 12:00:03`."""
    return iso[:19].replace("T", " ") if iso else "-"


def ago(iso: str | None) -> str:
    """How long ago an ISO time was (times without a zone are UTC)."""
    if not iso:
        return "-"
    at = datetime.fromisoformat(iso)
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    return duration(max(0.0, (datetime.now(UTC) - at).total_seconds()))


def _error(body: dict[str, Any]) -> str:
    error = body.get("error")
    return str(error["code"]) if error else "-"


def jobs_table(page: dict[str, Any]) -> str:
    """A page of `admin.job` bodies, with how to get the next one."""
    rows = [
        [
            job["id"],
            job["kind"],
            job["status"] + (" (dead)" if job["dead_letter"] else ""),
            str(job["attempts"]),
            ago(job["created_at"]),
            _error(job),
            clip(job["summary"], SUMMARY_CHARS),
        ]
        for job in page["data"]
    ]
    if not rows:
        return "no jobs match"
    headers = ["ID", "KIND", "STATUS", "ATTEMPTS", "AGE", "ERROR", "SUMMARY"]
    text = table(headers, rows)
    if page["has_more"]:
        text += f"\n... more with --after {page['last_id']}"
    return text


def queues_table(overview: dict[str, Any]) -> str:
    """Per queue: depth, oldest waiting, not yet sent, in progress, dead letters, workers."""
    rows = []
    for queue in overview["data"]:
        workers = ", ".join(
            f"{w['name']} (seen {duration(w['last_seen_s'])} ago"
            + (f", running {sum(w['running'].values())})" if w["running"] else ")")
            for w in queue["workers"]
        )
        rows.append(
            [
                queue["name"],
                str(queue["depth"]),
                duration(queue["oldest_waiting_s"]),
                str(queue["waiting_in_database"]),
                str(queue["in_progress"]),
                str(queue["dead_letters"]),
                workers or "none",
            ]
        )
    headers = ["QUEUE", "DEPTH", "OLDEST", "NOT SENT", "IN PROGRESS", "DEAD", "WORKERS"]
    return table(headers, rows)


def audit_table(page: dict[str, Any]) -> str:
    """A page of audit entries."""
    rows = [
        [
            str(entry["id"]),
            moment(entry["at"]),
            entry["actor"],
            entry["action"],
            entry["target_id"] or "-",
            entry["outcome"],
            clip(json.dumps(entry["detail"], separators=(",", ":")), DETAIL_CHARS),
        ]
        for entry in page["data"]
    ]
    if not rows:
        return "no audit entries match"
    text = table(["ID", "AT", "ACTOR", "ACTION", "TARGET", "OUTCOME", "DETAIL"], rows)
    if page["has_more"]:
        text += f"\n... more with --after {page['last_id']}"
    return text


def _kind_lines(job: dict[str, Any], kind: str) -> list[tuple[str, str]]:
    if kind == "chat":
        return [("answer", clip(job.get("answer"), 200)), ("model", job.get("model") or "-")]
    if kind == "ingest":
        names = ["files_total", "files_changed", "files_failed", "chunks_written"]
        return [("path", job.get("path") or "-"), ("counts", _counts(job, names))]
    filters = {k: v for k, v in job.get("filters", {}).items() if v}
    counts = _counts(job, ["matched", "requeued", "skipped"])
    return [("filters", json.dumps(filters)), ("counts", counts)]


def _counts(job: dict[str, Any], names: list[str]) -> str:
    return ", ".join(f"{name} {job.get(name, 0)}" for name in names)


def job_detail(detail: dict[str, Any]) -> str:
    """One job as `admin show` prints it: the summary, the job, then every attempt."""
    error = detail["error"]
    head = [
        ("status", detail["status"] + (" (dead letter)" if detail["dead_letter"] else "")),
        ("summary", clip(detail["summary"], 200)),
        ("owner", detail["owner"] or "-"),
        ("created", moment(detail["created_at"])),
        ("started", moment(detail["started_at"])),
        ("completed", moment(detail["completed_at"])),
        ("error", f"{error['code']}: {error['message'] or ''}".rstrip(": ") if error else "-"),
        *_kind_lines(detail["job"], detail["kind"]),
        ("attempts", str(detail["attempts"])),
    ]
    lines = [printable(f"{detail['kind']} job {detail['id']}")]
    lines += [f"  {label:<10} {printable(value)}" for label, value in head]
    history = detail["history"]
    if not history:
        return "\n".join([*lines, "", "no attempts yet"])
    rows = [
        [
            str(a["number"]),
            a["worker"] or "-",
            moment(a["started_at"]),
            moment(a["ended_at"]),
            a["outcome"] or "running",
            clip(" ".join(filter(None, [a["error_code"], a["error_message"]])), 60),
        ]
        for a in history
    ]
    lines += ["", table(["ATTEMPT", "WORKER", "STARTED", "ENDED", "OUTCOME", "ERROR"], rows)]
    for attempt in history:
        if attempt["traceback"]:
            lines += ["", f"attempt {attempt['number']} traceback:"]
            traceback = attempt["traceback"].rstrip().split("\n")
            lines += [f"  {printable(line)}" for line in traceback]
    return "\n".join(lines)
